package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/parkmesh/parkmesh/deploy/bench/relevance"
)

// runRelevance is -mode relevance.
func runRelevance(ctx context.Context, cfg config, out io.Writer) error {
	dir, err := os.MkdirTemp("", "parkmesh-relevance-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	scores, err := relevance.Run(ctx, dir, cfg.judgments)
	if err != nil {
		return err
	}
	if cfg.verbose {
		for i, q := range scores[1].Queries {
			lq := scores[0].Queries[i]
			fmt.Fprintf(out, "%-28s %-10s local P@5 %.2f nDCG %.2f | club P@5 %.2f nDCG %.2f hits %d found %d/%d\n", q.Q, q.Class, lq.P5, lq.NDCG, q.P5, q.NDCG, q.Hits, q.Found, q.Rel)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Relevance on the judged set (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&b, "`go run ./deploy/bench -mode relevance` — %d judged queries over the sample data of every park (%s).\n\n", len(scores[0].Queries), relevance.JudgmentsFile)
	b.WriteString("| scope | P@5 | nDCG@10 | queries with no result though one is relevant |\n|---|---|---|---|\n")
	for _, s := range scores {
		zero := "none"
		if len(s.Zero) > 0 {
			zero = strings.Join(s.Zero, ", ")
		}
		fmt.Fprintf(&b, "| %s | %.3f | %.3f | %s |\n", s.Scope, s.P5, s.NDCG, zero)
	}
	return report(cfg, b.String(), out)
}
