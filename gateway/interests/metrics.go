package interests

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parkmesh/parkmesh/gateway/state"
)

// Metrics counts the park's interests.
type Metrics struct {
	sentTotal, receivedTotal, limitedTotal prometheus.Counter
	answeredTotal                          *prometheus.CounterVec
	timeToAnswer                           prometheus.Histogram
}

// NewMetrics registers the interests' metrics on reg; the outbox depth is
// read from db when scraped.
func NewMetrics(reg prometheus.Registerer, db *state.DB) *Metrics {
	m := &Metrics{
		sentTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parkmesh_interests_sent_total", Help: "Interests the park's staff sent to peers' listings.",
		}),
		receivedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parkmesh_interests_received_total", Help: "Interests peers delivered and this park took (each once).",
		}),
		limitedTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parkmesh_interests_rate_limited_total", Help: "Interest deliveries refused because the peer was over its rate.",
		}),
		answeredTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parkmesh_interests_answered_total", Help: "Received interests the park's staff answered, by answer.",
		}, []string{"answer"}),
		timeToAnswer: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "parkmesh_interests_time_to_answer_seconds", Help: "Time from an interest's sending to the owner's answer.",
			Buckets: []float64{60, 600, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400, 60 * 86400},
		}),
	}
	depth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parkmesh_interests_outbox_depth", Help: "Interest messages to peers not acknowledged yet.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := db.InterestOutboxDepth(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
	reg.MustRegister(m.sentTotal, m.receivedTotal, m.limitedTotal, m.answeredTotal, m.timeToAnswer, depth)
	for _, a := range []string{"accepted", "declined"} {
		m.answeredTotal.WithLabelValues(a)
	}
	return m
}

func (m *Metrics) sent() {
	if m != nil {
		m.sentTotal.Inc()
	}
}

func (m *Metrics) received() {
	if m != nil {
		m.receivedTotal.Inc()
	}
}

func (m *Metrics) limited() {
	if m != nil {
		m.limitedTotal.Inc()
	}
}

func (m *Metrics) answered(answer string, after time.Duration) {
	if m != nil {
		m.answeredTotal.WithLabelValues(answer).Inc()
		m.timeToAnswer.Observe(max(after, 0).Seconds())
	}
}
