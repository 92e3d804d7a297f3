package app_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/admin"
	"github.com/parkmesh/parkmesh/gateway/clubindex"
	"github.com/parkmesh/parkmesh/gateway/feed"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
	"github.com/parkmesh/parkmesh/pkg/sqlitestore"
)

// TestBackupRestoreKeepsPeersConsistent: park A writes at a steady rate
// and is backed up mid-way; it writes more, which peer B reads; B's
// gateway goes down, A is stopped, restored from the backup in its own
// data directory and started again, and writes more; then B comes back.
// Every listing A acknowledged before the backup is in A again, the later
// ones are gone from A, and B's club index ends with exactly A's listings
// (B's position, past the backup point, is refused and B copies A afresh,
// although A's logs are by then far past it). A position behind the backup
// point stays valid; B's park stream never sees a position reused for
// another listing.
func TestBackupRestoreKeepsPeersConsistent(t *testing.T) {
	parks := nodetest.StartClub(t, nodetest.Options{}, "xian-hitech", "chengdu-hitech")
	a, b := parks[0], parks[1]
	waitLive(t, b, a.ID)
	sub := subscribe(t, func() string { return b.GatewayURL }, b.Token(parktoken.Viewer), "parks="+a.ID)
	waitFor(t, "subscriber connected", 5*time.Second, func() bool { return sub.conns.Load() > 0 })

	// A writes 40 listings over about four seconds, noting each one
	// acknowledged.
	var (
		mu    sync.Mutex
		acked []string
	)
	tok := a.Token(parktoken.Editor)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			req, _ := http.NewRequest("POST", a.GatewayURL+"/api/v1/projects", strings.NewReader(project(fmt.Sprintf("backup round %d", i), "")))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if res, err := http.DefaultClient.Do(req); err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				var l listing.Listing
				if res.StatusCode == 201 && json.Unmarshal(body, &l) == nil {
					mu.Lock()
					acked = append(acked, l.ID)
					mu.Unlock()
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	_, behind := federationFeed(t, b, a, "") // a position before the backup point
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	beforeBackup := append([]string(nil), acked...)
	mu.Unlock()
	out := filepath.Join(t.TempDir(), "backup")
	cli := func(args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		c := &admin.CLI{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }, Now: time.Now}
		if code := c.Run(args); code != admin.ExitOK {
			t.Fatalf("parkmesh %s: exit %d\n%s", strings.Join(args, " "), code, stderr.String())
		}
		t.Logf("parkmesh %s:\n%s", args[0], stderr.String())
	}
	cli("backup", "--out", out, "--data-dir", a.DataDir)
	<-done
	all := append([]string(nil), acked...)
	if len(beforeBackup) < 5 || len(all) <= len(beforeBackup)+5 {
		t.Fatalf("acknowledged %d before the backup and %d in all: the backup was not mid-way", len(beforeBackup), len(all))
	}
	// B reads everything, past the backup point.
	waitFor(t, "every listing in B's club index", 30*time.Second, func() bool { return indexCount(t, b, a.ID) == len(all) })
	_, ahead := federationFeed(t, b, a, "")

	// B goes down; A is stopped and restored, then writes more.
	b.Gateway.Kill()
	a.Gateway.Kill()
	for _, k := range listing.Kinds {
		for _, svc := range a.Services[k] {
			svc.Kill()
		}
	}
	cli("restore", "--from", out, "--data-dir", a.DataDir)
	for _, k := range listing.Kinds {
		a.StartService(k, a.DataDir)
	}
	a.RestartGateway()
	a.WaitInstances(map[listing.Kind]int{listing.KindOrganization: 1, listing.KindProject: 1, listing.KindTalent: 1}, 30*time.Second)
	restored := storeIDs(t, a, listing.KindProject)
	for _, id := range beforeBackup {
		if !restored[id] {
			t.Errorf("listing %s, acknowledged before the backup, is not in A after the restore", id)
		}
	}
	var undone []string
	for _, id := range all {
		if !restored[id] {
			undone = append(undone, id)
		}
	}
	if len(undone) == 0 {
		t.Fatal("every listing survived the restore: nothing was written after the backup")
	}
	// The restarted park takes writes once its gateway has found the
	// restarted services (on a loaded machine, after a while): wait for the
	// first one, then write.
	waitFor(t, "A accepting writes after the restore", 60*time.Second, func() bool {
		status, _ := a.Do(context.Background(), "POST", "/api/v1/projects", a.Token(parktoken.Editor),
			strings.NewReader(project("first after restore", "")))
		return status == http.StatusCreated
	})
	after := writer(t, a, 10, 50*time.Millisecond, "after restore")
	if ids := <-after; len(ids) != 10 {
		t.Fatalf("A created %d of 10 listings after the restore", len(ids))
	}

	// Positions: behind the backup point resumes, past it is refused,
	// although the logs are far past it now.
	if status, _ := federationFeed(t, b, a, ahead); status != http.StatusConflict {
		t.Errorf("a position past the backup point (%s) answered %d, want 409", ahead, status)
	}
	if status, _ := federationFeed(t, b, a, behind); status != http.StatusOK {
		t.Errorf("a position before the backup point (%s) answered %d, want 200", behind, status)
	}

	b.RestartGateway()
	now := storeIDs(t, a, listing.KindProject)
	waitFor(t, "B's club index to hold exactly A's listings", 60*time.Second, func() bool {
		got := indexIDs(t, b, a.ID)
		if len(got) != len(now) {
			return false
		}
		for id := range now {
			if !got[id] {
				return false
			}
		}
		return true
	})
	if !strings.Contains(b.Gateway.LogTail(100000), "cannot resume our feed position") {
		t.Error("B never copied A afresh after the restore")
	}
	// B's park stream: no position of A's project log names two listings.
	time.Sleep(2 * time.Second) // let the subscriber catch up
	seen := map[int64]string{}
	i := feed.KindIndex(listing.KindProject)
	for _, ev := range sub.snapshot() { // only A's events (parks=A)
		pos, err := feed.ParseClubPosition(ev.ID)
		if err != nil {
			t.Errorf("stream id %q: %v", ev.ID, err)
			continue
		}
		seq := pos.Of(a.ID)[i]
		if prev, ok := seen[seq]; ok && prev != ev.Subject {
			t.Errorf("position %d of A's project log named %s and then %s", seq, prev, ev.Subject)
		}
		seen[seq] = ev.Subject
	}
	if len(seen) == 0 {
		t.Error("B's park stream delivered nothing of A")
	}
}

// federationFeed opens to's federation feed as from, after lastID ("" for
// none), and reads it until it has caught up; it returns the answer's
// status and the position it caught up at.
func federationFeed(t *testing.T, from, to *nodetest.Park, lastID string) (int, string) {
	t.Helper()
	status, synced, _ := readFeed(t, from, to, lastID)
	return status, synced
}

// storeIDs is the live listings of kind k in p's own store file.
func storeIDs(t *testing.T, p *nodetest.Park, k listing.Kind) map[string]bool {
	t.Helper()
	return ids(t, filepath.Join(p.DataDir, sqlitestore.ServiceFileName(p.ID, k)), `SELECT id FROM listings`)
}

// indexIDs is the live listings of park the club index of p holds.
func indexIDs(t *testing.T, p *nodetest.Park, park string) map[string]bool {
	t.Helper()
	return ids(t, filepath.Join(p.DataDir, clubindex.FileName), `SELECT id FROM listings WHERE park = ?`, park)
}

func ids(t *testing.T, path, query string, args ...any) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out[id] = true
	}
	return out
}
