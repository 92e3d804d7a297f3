package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parkmesh/parkmesh/gateway/interests"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// contractInterests drives the interests' operations, both sides, for
// TestContract: B expresses interest in A's club project, A answers, B
// withdraws; the typical refusals; the peers' federation calls.
func contractInterests(t *testing.T, a, b *contractPark, project, private string) {
	t.Helper()
	bAPI, aAPI := b.parkURL+"/api/v1", a.parkURL+"/api/v1"
	bEditor, bViewer, bAdmin := b.token(t, parktoken.Editor), b.token(t, parktoken.Viewer), b.token(t, parktoken.Admin)
	aEditor, aViewer, aAdmin := a.token(t, parktoken.Editor), a.token(t, parktoken.Viewer), a.token(t, parktoken.Admin)
	send := `{"listing":{"park":"` + a.id + `","kind":"projects","id":"` + project + `"},"message":"合作 landing","organization":{"name":"Chengdu office"},"offer":"space","sender_contact":{"email":"office@chengdu.example"}}`
	var in interests.Interest
	// The stream at A, opened before: the first event is where it starts.
	stream := contractCall{method: "GET", url: aAPI + "/interests/stream", token: aViewer}
	evs := firstEvents(t, stream, 2, 1, 30*time.Second, func() {
		json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: bAPI + "/interests", token: bEditor, body: send}), &in)
	})
	if evs[0][1] != "position" || !strings.Contains(evs[1][2], interests.TypeReceived) {
		t.Errorf("A's interest stream: %v", evs)
	}
	expect(t, 400, "message", contractCall{method: "POST", url: bAPI + "/interests", token: bEditor, body: strings.Replace(send, `"合作 landing"`, `""`, 1)})
	expect(t, 404, "listing", contractCall{method: "POST", url: bAPI + "/interests", token: bEditor, body: strings.Replace(send, project, private, 1)})
	expect(t, 403, "", contractCall{method: "POST", url: bAPI + "/interests", token: bViewer, body: send})
	expect(t, 401, "", contractCall{method: "POST", url: bAPI + "/interests", body: send})
	expect(t, 200, "", contractCall{method: "GET", url: bAPI + "/interests?box=sent&limit=5", token: bViewer})
	expect(t, 400, "box", contractCall{method: "GET", url: bAPI + "/interests?box=outbox", token: bViewer})
	expect(t, 401, "", contractCall{method: "GET", url: bAPI + "/interests"})
	expect(t, 400, "Last-Event-ID", contractCall{method: "GET", url: aAPI + "/interests/stream?last_event_id=zzz", token: aViewer})
	expect(t, 401, "", contractCall{method: "GET", url: aAPI + "/interests/stream"})
	expect(t, 200, "", contractCall{method: "GET", url: bAPI + "/interests/" + in.ID, token: bViewer})
	expect(t, 400, "id", contractCall{method: "GET", url: bAPI + "/interests/nope", token: bViewer})
	expect(t, 404, "", contractCall{method: "GET", url: bAPI + "/interests/" + interests.NewID(), token: bViewer})
	expect(t, 401, "", contractCall{method: "GET", url: bAPI + "/interests/" + in.ID})
	expect(t, 200, "", contractCall{method: "GET", url: bAPI + "/interests/" + in.ID + "/audit", token: bAdmin})
	expect(t, 403, "", contractCall{method: "GET", url: bAPI + "/interests/" + in.ID + "/audit", token: bEditor})
	expect(t, 400, "id", contractCall{method: "GET", url: bAPI + "/interests/x/audit", token: bAdmin})
	expect(t, 404, "", contractCall{method: "GET", url: bAPI + "/interests/" + interests.NewID() + "/audit", token: bAdmin})
	expect(t, 401, "", contractCall{method: "GET", url: bAPI + "/interests/" + in.ID + "/audit"})

	// At A: answered.
	waitFor(t, "A holding B's interest", 20*time.Second, func() bool {
		st, _, _ := contractCall{method: "GET", url: aAPI + "/interests/" + in.ID, token: aViewer}.do(t)
		return st == 200
	})
	expect(t, 400, "contact", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", token: aEditor, body: `{"note":"ok"}`})
	expect(t, 400, "contact.email", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", token: aEditor, body: `{"contact":{"email":"nope"}}`})
	expect(t, 403, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", token: aViewer, body: `{}`})
	expect(t, 404, "", contractCall{method: "POST", url: aAPI + "/interests/" + interests.NewID() + "/accept", token: aEditor, body: `{"contact":{"email":"a@b.example"}}`})
	expect(t, 401, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", body: `{}`})
	expect(t, 200, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", token: aEditor, body: `{"note":"welcome","contact":{"name":"Office","email":"office@xian.example"}}`})
	expect(t, 409, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/accept", token: aEditor, body: `{"contact":{"email":"office@xian.example"}}`})
	expect(t, 409, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/decline", token: aEditor, body: `{"note":"no"}`})
	expect(t, 400, "note", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/decline", token: aEditor, body: `{"note":1}`})
	expect(t, 403, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/decline", token: aViewer})
	expect(t, 404, "", contractCall{method: "POST", url: aAPI + "/interests/" + interests.NewID() + "/decline", token: aEditor})
	expect(t, 401, "", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/decline"})
	expect(t, 200, "", contractCall{method: "GET", url: aAPI + "/interests/" + in.ID + "/audit", token: aAdmin})
	// A second interest, declined.
	var second interests.Interest
	json.Unmarshal(expect(t, 201, "", contractCall{method: "POST", url: bAPI + "/interests", token: bEditor, body: send}), &second)
	waitFor(t, "A holding B's second interest", 20*time.Second, func() bool {
		st, _, _ := contractCall{method: "GET", url: aAPI + "/interests/" + second.ID, token: aViewer}.do(t)
		return st == 200
	})
	expect(t, 200, "", contractCall{method: "POST", url: aAPI + "/interests/" + second.ID + "/decline", token: aEditor, body: `{"note":"not now"}`})

	// At B: withdrawn once accepted.
	waitFor(t, "B learning of the acceptance", 20*time.Second, func() bool {
		_, _, body := contractCall{method: "GET", url: bAPI + "/interests/" + in.ID, token: bViewer}.do(t)
		return strings.Contains(string(body), `"status":"accepted"`)
	})
	expect(t, 400, "id", contractCall{method: "POST", url: aAPI + "/interests/" + in.ID + "/withdraw", token: aEditor})
	expect(t, 403, "", contractCall{method: "POST", url: bAPI + "/interests/" + in.ID + "/withdraw", token: bViewer})
	expect(t, 404, "", contractCall{method: "POST", url: bAPI + "/interests/" + interests.NewID() + "/withdraw", token: bEditor})
	expect(t, 401, "", contractCall{method: "POST", url: bAPI + "/interests/" + in.ID + "/withdraw"})
	expect(t, 200, "", contractCall{method: "POST", url: bAPI + "/interests/" + in.ID + "/withdraw", token: bEditor, body: `{"note":"found another"}`})
	expect(t, 409, "", contractCall{method: "POST", url: bAPI + "/interests/" + in.ID + "/withdraw", token: bEditor})

	// The federation side, called as B.
	fed := a.fedURL + "/federation/v1/interests"
	tok := func() string { return fedToken(t, b, a, parktoken.ScopeInterests) }
	message := func(listingID string) string {
		return `{"id":"` + interests.NewID() + `","listing":{"park":"` + a.id + `","kind":"project","id":"` + listingID + `"},"message":"hi","organization":{"name":"x"},"created_at":"2026-12-01T00:00:00Z","expires_at":"2027-01-01T00:00:00Z"}`
	}
	msg := message(project)
	expect(t, 201, "", contractCall{method: "POST", url: fed, token: tok(), body: msg})
	expect(t, 200, "", contractCall{method: "POST", url: fed, token: tok(), body: msg})
	expect(t, 404, "listing", contractCall{method: "POST", url: fed, token: tok(), body: message(private)})
	expect(t, 400, "sender_contact", contractCall{method: "POST", url: fed, token: tok(), body: `{"sender_contact":{"email":"x@y.example"}}`})
	expect(t, 401, "", contractCall{method: "POST", url: fed, token: fedToken(t, b, a, parktoken.ScopeSearch), body: msg})
	expect(t, 200, "", contractCall{method: "POST", url: fed + "/" + in.ID + "/status", token: tok(), body: `{"status":"withdrawn","at":"2026-12-01T00:00:00Z"}`})
	expect(t, 400, "status", contractCall{method: "POST", url: fed + "/" + in.ID + "/status", token: tok(), body: `{"status":"accepted","at":"2026-12-01T00:00:00Z"}`})
	expect(t, 404, "", contractCall{method: "POST", url: fed + "/" + interests.NewID() + "/status", token: tok(), body: `{"status":"withdrawn","at":"2026-12-01T00:00:00Z"}`})
	expect(t, 401, "", contractCall{method: "POST", url: fed + "/" + in.ID + "/status", body: `{"status":"withdrawn","at":"2026-12-01T00:00:00Z"}`})
}
