package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/parkmesh/parkmesh/deploy/local"
	"github.com/parkmesh/parkmesh/gateway/search"
)

// gateway is one park's gateway as its staff's tools call it: the park
// side, with the park's admin token.
type gateway struct {
	local.ParkInfo
	client *http.Client
}

// newGateways returns a client per park, sharing one connection pool large
// enough that no searcher waits for, or opens, a connection.
func newGateways(parks []local.ParkInfo) []*gateway {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 128, MaxIdleConns: 1024}}
	out := make([]*gateway, len(parks))
	for i, p := range parks {
		out[i] = &gateway{ParkInfo: p, client: client}
	}
	return out
}

// answer is what the bench reads of a search answer.
type answer struct {
	took    time.Duration
	code    int    // HTTP status; 0 when no answer came
	failure string // why no answer came, or the error's code
	Results []json.RawMessage
	Partial bool
	Parks   search.ParkSummary
}

func (a *answer) ok() bool { return a.code == http.StatusOK }

// park returns the entry of park id (nil when the answer has none).
func (a *answer) park(id string) *search.ParkStatus {
	for i := range a.Parks.Details {
		if a.Parks.Details[i].Park == id {
			return &a.Parks.Details[i]
		}
	}
	return nil
}

// hits is the sum of every park's hits.
func (a *answer) hits() int {
	n := 0
	for _, d := range a.Parks.Details {
		n += d.Hits
	}
	return n
}

// search runs GET /api/v1/search with params; took covers the whole
// exchange, reading the answer included.
func (g *gateway) search(ctx context.Context, params url.Values) *answer {
	a := &answer{}
	start := time.Now()
	defer func() { a.took = time.Since(start) }()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.GatewayURL+"/api/v1/search?"+params.Encode(), nil)
	if err != nil {
		return a
	}
	req.Header.Set("Authorization", "Bearer "+g.AdminToken)
	res, err := g.client.Do(req)
	if err != nil {
		if inner := errors.Unwrap(err); inner != nil { // not the whole URL again
			err = inner
		}
		a.failure = "no answer: " + err.Error()
		return a
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var body struct {
			Error struct{ Code string }
		}
		json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body)
		a.code, a.failure = res.StatusCode, fmt.Sprintf("%d %s", res.StatusCode, body.Error.Code)
		return a
	}
	if err := json.NewDecoder(res.Body).Decode(a); err != nil {
		a.failure = "answer cut short: " + err.Error()
		return a
	}
	a.code = res.StatusCode
	return a
}

// call sends a JSON request to the park API and decodes a JSON answer
// into out (when not nil); any status but want is an error.
func (g *gateway) call(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.GatewayURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.AdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 1<<10))
		return fmt.Errorf("%s %s at %s: %s: %s", method, path, g.ID, res.Status, bytes.TrimSpace(msg))
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(res.Body).Decode(out)
}

// peerWith makes g and other peers the way park IT teams do: g generates
// a one-time token for other, and other establishes the peering with it.
// It returns when other's gateway has answered the establish request.
func (g *gateway) peerWith(ctx context.Context, other *gateway) error {
	var tok struct{ Token string }
	if err := g.call(ctx, http.MethodPost, "/api/v1/peerings/tokens", map[string]string{"peer": other.ID}, http.StatusCreated, &tok); err != nil {
		return err
	}
	return other.call(ctx, http.MethodPost, "/api/v1/peerings", map[string]string{"token": tok.Token}, http.StatusCreated, nil)
}

// unpeer deletes g's peering with park.
func (g *gateway) unpeer(ctx context.Context, park string) error {
	return g.call(ctx, http.MethodDelete, "/api/v1/peerings/"+url.PathEscape(park), nil, http.StatusNoContent, nil)
}

// peerAll makes every pair of parks peers (mesh), or the first park a
// peer of each other (star), and returns the number of peerings.
func peerAll(ctx context.Context, gws []*gateway, star bool) (int, error) {
	n := 0
	for i, a := range gws {
		for _, b := range gws[i+1:] {
			if err := a.peerWith(ctx, b); err != nil {
				return n, err
			}
			n++
		}
		if star {
			break
		}
	}
	return n, nil
}

// clubSize is how many parks (itself included) park i's club index
// covers once peered.
func clubSize(cfg config, i int) int {
	if cfg.star() && i > 0 {
		return 2
	}
	return cfg.parks
}

// waitLive polls g's club search until its club index answers live for
// want parks and not partial, and returns that answer; it gives up after
// timeout.
func (g *gateway) waitLive(ctx context.Context, want int, timeout time.Duration) (*answer, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last *answer
	for {
		a := g.search(ctx, url.Values{"scope": {"club"}, "limit": {"1"}})
		if a.ok() {
			last = a
			if a.Parks.Live == want && !a.Partial {
				return a, nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				return nil, fmt.Errorf("%s: club search never answered within %s", g.ID, timeout)
			}
			return nil, fmt.Errorf("%s: club index not live for %d parks within %s (last: %d live, %d syncing, %d stale)",
				g.ID, want, timeout, last.Parks.Live, last.Parks.Syncing, last.Parks.Stale)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
