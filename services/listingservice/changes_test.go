package listingservice_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/deploy/testenv/logbuf"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/services/listingservice"
)

// Over real HTTP, the client reads what the store holds now: each listing
// once, the person's current consent, a tombstone with its audience and
// nothing else.
func TestChangesOverHTTPAreCurrentState(t *testing.T) {
	ctx := t.Context()
	spec := specs[2] // talent
	svc := overHTTP(t, spec)
	person, err := svc.Create(ctx, newListing(t, spec.Kind, func(b map[string]any) {
		b["title"] = "李伟 robotics mentor"
		attrs := b["attrs"].(map[string]any)
		attrs["contact"] = map[string]any{"email": "li.wei@example.cn", "phone": "+86 29 8888 0000"}
		attrs["consent"] = map[string]any{"share_contact": true}
	}))
	if err != nil {
		t.Fatal(err)
	}
	shared, err := svc.Create(ctx, newListing(t, spec.Kind, func(b map[string]any) {
		b["title"], b["visibility"], b["share_with"] = "王芳 materials advisor", "peers", []string{"chengdu-hitech", "haifa-lifescience"}
	}))
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := *person
	withdrawn.Attrs.Consent = &listing.Consent{ShareContact: false}
	if _, err := svc.Update(ctx, person.ID, &withdrawn, 1); err != nil {
		t.Fatal(err)
	}
	if err := svc.Delete(ctx, shared.ID, 1); err != nil {
		t.Fatal(err)
	}

	page, err := svc.Changes(ctx, 0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Changes) != 2 || page.From != 0 || page.Next != 4 {
		t.Fatalf("page = %+v, want the two listings, next 4", page)
	}
	p, s := page.Changes[0], page.Changes[1]
	if p.Seq != 3 || p.FirstSeq != 1 || p.Op != listing.OpUpdated || p.Version != 2 || p.Park != "xian-hitech" || p.Kind != spec.Kind ||
		!p.Audience.Club || p.Listing == nil || p.Listing.Attrs.Consent == nil || p.Listing.Attrs.Consent.ShareContact || p.At.IsZero() {
		t.Errorf("the person's change = %+v, listing %+v", p, p.Listing)
	}
	if s.Seq != 4 || s.FirstSeq != 2 || s.Op != listing.OpDeleted || s.Version != 2 || s.Listing != nil || s.ListingID != shared.ID ||
		s.Audience.Club || fmt.Sprint(s.Audience.Parks) != "[chengdu-hitech haifa-lifescience]" {
		t.Errorf("the tombstone = %+v", s)
	}
	raw, _ := json.Marshal(s)
	if strings.Contains(string(raw), "王芳") {
		t.Errorf("tombstone carries content: %s", raw)
	}
	tail, err := svc.Changes(ctx, 3, 10, 0)
	if err != nil || len(tail.Changes) != 1 || tail.Changes[0].Seq != 4 {
		t.Errorf("changes after 3 = %+v, %v", tail, err)
	}
}

// The service compacts its change log at start, by -changes-retention;
// the changes read and the sequence go on as before.
func TestCompactionAtStartKeepsTheChangesRead(t *testing.T) {
	dir := t.TempDir()
	spec := specs[1]
	base, stop := startService(t, spec, dir)
	for i := range 3 {
		b := validBody(spec.Kind)
		b["title"] = fmt.Sprintf("项目 %d", i)
		if r := do(t, "POST", base+"/v1/listings", b); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	var before listingservice.ChangesPage
	do(t, "GET", base+"/v1/changes?after=0", nil).decode(t, &before)
	stop()
	time.Sleep(5 * time.Millisecond) // older than the retention below

	logs := &logbuf.Buffer{}
	m := listingservice.NewMain(spec, logs)
	if err := m.ParseFlags([]string{"-listen", "127.0.0.1:0", "-data-dir", dir, "-park", "xian-hitech", "-consul", "off"},
		func(k string) string { return map[string]string{"PARKMESH_CHANGES_RETENTION": "1ms"}[k] }); err != nil {
		t.Fatal(err)
	}
	if m.Config.ChangesRetention != time.Millisecond {
		t.Fatalf("retention from the environment = %s", m.Config.ChangesRetention)
	}
	if err := m.Open(t.Context()); err != nil {
		t.Fatal(err)
	}
	base = serve(t, m)
	deadline := time.Now().Add(10 * time.Second)
	var deleted any
	for deleted == nil && time.Now().Before(deadline) {
		for _, l := range logs.JSONLines(t) {
			if l["msg"] == "compacted the change log" {
				deleted = l["deleted"]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if deleted != float64(3) {
		t.Fatalf("compaction at start logged deleted = %v, want 3", deleted)
	}
	var after listingservice.ChangesPage
	do(t, "GET", base+"/v1/changes?after=0", nil).decode(t, &after)
	if b, a := mustJSON(t, before), mustJSON(t, after); a != b {
		t.Errorf("changes read after compaction:\n%s\nwant\n%s", a, b)
	}
	if r := do(t, "POST", base+"/v1/listings", validBody(spec.Kind)); r.status != 201 {
		t.Fatal(r.status)
	}
	var next listingservice.ChangesPage
	do(t, "GET", base+"/v1/changes?after=3", nil).decode(t, &next)
	if len(next.Changes) != 1 || next.Changes[0].Seq != 4 {
		t.Errorf("first change after compaction = %+v, want seq 4", next)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestChangesRetentionFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  string
		want time.Duration
		err  string // part of the error; "" for none
	}{
		{nil, "", listingservice.DefaultChangesRetention, ""},
		{[]string{"-changes-retention", "0"}, "", 0, ""},
		{nil, "72h", 72 * time.Hour, ""},
		{[]string{"-changes-retention", "1h"}, "72h", time.Hour, ""},
		{[]string{"-changes-retention", "-1h"}, "", 0, "-changes-retention -1h0m0s: must be 0"},
		{nil, "a week", 0, "-changes-retention (from PARKMESH_CHANGES_RETENTION)"},
	} {
		m := listingservice.NewMain(specs[0], nil)
		args := append([]string{"-consul", "off"}, c.args...)
		err := m.ParseFlags(args, func(k string) string {
			if k == "PARKMESH_CHANGES_RETENTION" {
				return c.env
			}
			return ""
		})
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v env %q: %v", c.args, c.env, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v env %q: err = %v, want one containing %q", c.args, c.env, err, c.err)
		case c.err == "" && m.Config.ChangesRetention != c.want:
			t.Errorf("%v env %q: retention %s, want %s", c.args, c.env, m.Config.ChangesRetention, c.want)
		}
	}
}
