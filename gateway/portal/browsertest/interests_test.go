package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// visibleAt waits until park p's club view holds l (its index followed
// the owner's feed), so the listing's page and the interest form work.
func visibleAt(t *testing.T, p *nodetest.Park, l listing.Listing) {
	t.Helper()
	eventually(t, fmt.Sprintf("%s seeing %s", p.ID, l.ID), func() string {
		status, body := api(t, p, parktoken.Viewer, "GET", fmt.Sprintf("/api/v1/club/%s/%s/%s", l.Park, l.Kind.Collection(), l.ID), nil)
		if status != http.StatusOK {
			return fmt.Sprintf("%d %s", status, body)
		}
		return ""
	})
}

// express fills the interest form on the page of listing l and sends it;
// it returns the new interest's id, once the page shows it.
func express(p *page, l listing.Listing, message, offer string) string {
	p.t.Helper()
	return expressSubmitting(p, l, message, offer, func() { p.click("#express-send") })
}

// expressSubmitting is express with send as the officer's send (a double
// submit, say).
func expressSubmitting(p *page, l listing.Listing, message, offer string, send func()) string {
	p.t.Helper()
	p.route(fmt.Sprintf("#/listing/%s/%s/%s", l.Park, l.Kind.Collection(), l.ID))
	p.click("#express-interest")
	p.wait("the interest form", `!!document.querySelector("#express-form")`)
	p.set(`#express-form [name="message"]`, message)
	p.set(`#express-form [name="offer"]`, offer)
	p.set(`#express-form [name="sender_contact.email"]`, "dana@haifa-park.example")
	p.set(`#express-form [name="sender_contact.phone"]`, "+972 4 555 0199")
	send()
	p.wait("the sent interest's page", `!!document.querySelector("#interest[data-box=sent]")`)
	var id string
	p.eval(`document.querySelector("#interest").dataset.id`, &id)
	return id
}

// TestPortalInterests runs expressions of interest between two real parks
// in a real Chromium: Haifa's editor expresses interest in Chengdu's
// listings from their pages; each arrives live in Chengdu's received box
// with a count of new ones; Chengdu accepts (contacts shown at both parks,
// none before), declines with a note, and a withdrawal after acceptance
// hides the exchanged contacts at both; an interest in a listing withdrawn
// meanwhile is refused as such; Chengdu's admin reads the audit trail; all
// in the language each officer chose.
func TestPortalInterests(t *testing.T) {
	browser := startBrowser(t)
	a, b := chengdu.start(t), haifa.start(t)
	nodetest.Peer(t, a, b)
	addUser(t, a, "li.wei", "李伟", "editor", "zh", password)
	addUser(t, a, "chen.jing", "陈静", "admin", "zh", password)
	addUser(t, b, "dana", "Dana Levi", "editor", "en", password)

	// Chengdu's listings Haifa's officer is interested in; Haifa's own
	// organisation, which she sends on behalf of.
	pilot := create(t, a, map[string]any{"kind": "project", "title": "成都钙钛矿中试线 Perovskite pilot line", "summary": "寻找海外技术伙伴。",
		"sectors": []string{"new-materials"}, "country": "CN", "city": "成都", "seeking": []string{"partner"}, "visibility": "club",
		"attrs": map[string]any{"stage": "pilot"}})
	lab := create(t, a, map[string]any{"kind": "project", "title": "成都生物材料实验室 Biomaterials lab", "sectors": []string{"biomedicine"},
		"country": "CN", "visibility": "club", "attrs": map[string]any{"stage": "prototype"}})
	expert := create(t, a, map[string]any{"kind": "talent", "title": "张博士 Dr. Zhang（复合材料）", "sectors": []string{"new-materials"},
		"country": "CN", "visibility": "club", "offering": []string{"mentoring"},
		"attrs": map[string]any{"expertise": []string{"composites"}, "contact": map[string]any{"email": "zhang@cd-expert.example"},
			"consent": map[string]any{"share_contact": true}}})
	gone := create(t, a, map[string]any{"kind": "project", "title": "即将撤下的项目 about to be withdrawn", "sectors": []string{"other"},
		"country": "CN", "visibility": "club", "attrs": map[string]any{"stage": "idea"}})
	create(t, b, map[string]any{"kind": "organization", "title": "Haifa Materials Ltd.", "sectors": []string{"new-materials"},
		"country": "IL", "visibility": "club", "attrs": map[string]any{"org_type": "company"}})
	for _, l := range []listing.Listing{pilot, lab, expert, gone} {
		visibleAt(t, b, l)
	}

	pa := newPage(t, browser, "Chengdu officer", a.GatewayURL)
	pa.open("/")
	signIn(pa, "li.wei", password)
	pa.waitText("#signed-in-as", "李伟")
	pb := newPage(t, browser, "Haifa officer", b.GatewayURL)
	pb.open("/")
	signIn(pb, "dana", password)
	pb.waitText("#signed-in-as", "Dana Levi")

	var accepted string
	t.Run("send at Haifa, appears at Chengdu, accept, contacts at both", func(t *testing.T) {
		p, q := pa.on(t), pb.on(t)
		p.route("#/interests")
		p.wait("the empty received box", `!!document.querySelector("#interests-empty")`)
		if got := p.text("#interests-empty"); got != "暂无收到的合作意向。" {
			t.Errorf("empty box: %q", got)
		}

		q.route(fmt.Sprintf("#/listing/%s/projects/%s", chengdu.id, pilot.ID))
		q.waitText("#express-interest", "Express interest")
		q.click("#express-interest")
		q.wait("the interest form", `!!document.querySelector("#express-form")`)
		var org string
		q.eval(`document.querySelector('#express-form [name="organization.listing_id"] option:checked').textContent`, &org)
		if org != "Haifa Materials Ltd." {
			t.Errorf("the organisation offered first: %q, want Haifa's directory listing", org)
		}
		if got := q.text("#express-listing"); !strings.Contains(got, pilot.Title) || !strings.Contains(got, chengdu.en) {
			t.Errorf("the form's listing: %q", got)
		}
		// Sent without a contact: refused at the field, nothing sent.
		q.set(`#express-form [name="message"]`, "We would like to pilot our coating on your line. 希望合作。")
		q.click("#express-send")
		q.waitText(`[data-field="sender_contact"] > .field-error`, "Give an email address or a phone number.")
		if _, body := api(t, b, parktoken.Viewer, "GET", "/api/v1/interests?box=sent", nil); strings.Contains(string(body), pilot.ID) {
			t.Errorf("an invalid interest was stored: %s", body)
		}
		q.set(`#express-form [name="offer"]`, "Licence for the graphene coating; two engineers on site.")
		q.set(`#express-form [name="sender_contact.email"]`, "dana@haifa-park.example")
		q.set(`#express-form [name="sender_contact.phone"]`, "+972 4 555 0199")
		q.screenshot("interest-express")
		q.click("#express-send")
		q.waitText("#flash", "Your interest is on its way to "+chengdu.en)
		// The flash shows on the route change, before the page is drawn.
		q.wait("the sent interest's page", `!!document.querySelector("#interest[data-box=sent]")`)
		q.eval(`document.querySelector("#interest").dataset.id`, &accepted)
		if got := q.text("#contacts-pending"); got != "Contacts are exchanged only once the other park accepts." {
			t.Errorf("before an answer, at Haifa: %q", got)
		}

		// Chengdu's received box shows it without a reload, with a count.
		row := fmt.Sprintf(`#interests li[data-id=%q]`, accepted)
		p.waitText(row, pilot.Title)
		p.waitText("#interests-new", "1")
		got := p.text(row)
		for _, want := range []string{"新", "待答复", "来自" + haifa.zh, "Haifa Materials Ltd."} {
			if !strings.Contains(got, want) {
				t.Errorf("the received interest's row lacks %q: %q", want, got)
			}
		}
		p.screenshot("interests-received")
		p.click(row + " a.interest-title")
		p.waitText("#interest-message", "希望合作")
		if got := p.text("#interest-sender-park"); got != haifa.zh {
			t.Errorf("sender park: %q", got)
		}
		if got := p.text("#interest-org"); got != "Haifa Materials Ltd." {
			t.Errorf("organisation: %q", got)
		}
		// Nothing personal before acceptance.
		if view := p.text("#view"); strings.Contains(view, "dana@") || strings.Contains(view, "555 0199") {
			t.Errorf("the sender's contact is shown before acceptance:\n%s", view)
		}
		// Opened: the count of new ones goes.
		p.wait("no new interests", `document.querySelector("#interests-new").hidden`)

		// Accept with the park's contact for the project.
		p.set(`#answer-form [name="note"]`, "欢迎来成都洽谈。")
		p.set(`#answer-form [name="contact.name"]`, "李伟 · 招商局")
		p.set(`#answer-form [name="contact.email"]`, "invest@cdht.example")
		p.click("#accept")
		p.waitText("#flash", "已接受")
		p.waitText("#their-contact", "dana@haifa-park.example")
		if got := p.text("#own-contact"); !strings.Contains(got, "invest@cdht.example") {
			t.Errorf("Chengdu's own contact shown: %q", got)
		}
		if got := p.text(`#interest .istatus`); got != "已接受" {
			t.Errorf("status at Chengdu: %q", got)
		}
		p.screenshot("interest-accepted-owner")

		// Haifa's page follows live: accepted, Chengdu's contact shown.
		q.waitText("#their-contact", "invest@cdht.example")
		if got := q.text(`#interest .istatus`); got != "accepted" {
			t.Errorf("status at Haifa: %q", got)
		}
		if got := q.text("#interest-note"); got != "欢迎来成都洽谈。" {
			t.Errorf("the answer's note at Haifa: %q", got)
		}
		if got := q.text("#own-contact"); !strings.Contains(got, "dana@haifa-park.example") {
			t.Errorf("Haifa's own contact: %q", got)
		}
		q.screenshot("interest-accepted-sender")
	})

	t.Run("audit trail for Chengdu's admin", func(t *testing.T) {
		if accepted == "" {
			t.Fatal("no interest was accepted: the first journey failed, so this one cannot run")
		}
		ad := newPage(t, browser, "Chengdu admin", a.GatewayURL)
		ad.open("/")
		signIn(ad, "chen.jing", password)
		ad.waitText("#signed-in-as", "陈静")
		ad.route("#/interest/" + accepted)
		ad.wait("the audit trail", `!!document.querySelector('#audit tr[data-action="contact_received"]')`)
		for action, want := range map[string][]string{
			"received":         {"收到", haifa.zh, "message"},
			"opened":           {"查看", "li.wei"},
			"accepted":         {"接受", "li.wei", "contact.email"},
			"contact_received": {"收到联系方式", haifa.zh, "sender_contact.email"},
		} {
			got := ad.text(fmt.Sprintf(`#audit tr[data-action=%q]`, action))
			for _, w := range want {
				if !strings.Contains(got, w) {
					t.Errorf("audit %s: %q lacks %q", action, got, w)
				}
			}
		}
		ad.screenshot("interest-audit")
		// An editor sees no audit trail.
		if pa.on(t).count("#audit") != 0 {
			t.Error("an editor sees the audit trail")
		}
	})

	t.Run("decline with a note", func(t *testing.T) {
		p, q := pa.on(t), pb.on(t)
		// Sent twice at once (a double submit before the first answer):
		// one interest, as the form sends one Idempotency-Key.
		id := expressSubmitting(q, lab, "Could we co-develop a scaffold?", "Cell lines.", func() {
			var ok bool
			q.eval(`(() => { const f = document.querySelector("#express-form"); f.requestSubmit(); f.requestSubmit(); return true })()`, &ok)
		})
		_, sent := api(t, b, parktoken.Viewer, "GET", "/api/v1/interests?box=sent", nil)
		if n := strings.Count(string(sent), `"id":"`+lab.ID+`"`); n != 1 {
			t.Errorf("%d interests in Haifa's sent box for the lab after a double submit, want 1: %s", n, sent)
		}
		p.route("#/interests")
		p.waitText(fmt.Sprintf(`#interests li[data-id=%q]`, id), lab.Title)
		p.route("#/interest/" + id)
		p.wait("the answer form", `!!document.querySelector("#answer-form")`)
		p.set(`#answer-form [name="note"]`, "实验室今年排满，明年再议。")
		p.click("#decline")
		p.waitText("#flash", "已婉拒")
		if p.count("#contacts") != 0 || p.count("#answer-form") != 0 {
			t.Error("a declined interest shows contacts or the answer form")
		}
		q.waitText(`#interest .istatus`, "declined")
		if got := q.text("#interest-note"); got != "实验室今年排满，明年再议。" {
			t.Errorf("the note at Haifa: %q", got)
		}
		if view := q.text("#view"); strings.Contains(view, "cdht.example") || q.count("#withdraw-interest") != 0 {
			t.Errorf("a declined interest at Haifa shows a contact or can be withdrawn:\n%s", view)
		}
		q.screenshot("interest-declined")
		// Haifa's sent box, filtered by status.
		q.route("#/interests?box=sent&status=declined")
		q.waitText(fmt.Sprintf(`#interests li[data-id=%q]`, id), "declined")
		if n := q.count("#interests li"); n != 1 {
			t.Errorf("%d declined interests in Haifa's sent box, want 1", n)
		}
	})

	t.Run("withdraw after acceptance ends the exchange", func(t *testing.T) {
		p, q := pa.on(t), pb.on(t)
		id := express(q, expert, "Would Dr. Zhang advise our composites team?", "")
		p.route("#/interest/" + id)
		p.wait("the answer form", `!!document.querySelector("#answer-form")`)
		if got := p.text("#accept-talent"); !strings.Contains(got, "同意") {
			t.Errorf("accepting talent: %q", got)
		}
		p.click("#accept")
		p.waitText("#their-contact", "dana@haifa-park.example")
		// A talent's own consented contact is what Haifa gets.
		q.waitText("#their-contact", "zhang@cd-expert.example")
		q.click("#withdraw-interest")
		q.set(`[name="withdraw_note"]`, "Found an advisor closer to home.")
		q.click("#withdraw-interest-confirm")
		q.waitText("#flash", "Withdrawn.")
		q.waitText("#contacts-ended", "The exchange has ended")
		if view := q.text("#view"); strings.Contains(view, "zhang@") || strings.Contains(view, "dana@") {
			t.Errorf("contacts shown at Haifa after withdrawal:\n%s", view)
		}
		q.screenshot("interest-withdrawn")
		// Chengdu's page follows: withdrawn, the note, no contact.
		p.waitText("#contacts-ended", "联系方式交换已结束")
		if got := p.text("#interest-withdraw-note"); got != "Found an advisor closer to home." {
			t.Errorf("the withdrawal note at Chengdu: %q", got)
		}
		if view := p.text("#view"); strings.Contains(view, "dana@") || strings.Contains(view, "zhang@") {
			t.Errorf("contacts shown at Chengdu after withdrawal:\n%s", view)
		}
	})

	t.Run("an interest in a withdrawn listing is refused", func(t *testing.T) {
		q := pb.on(t)
		q.route(fmt.Sprintf("#/listing/%s/projects/%s", chengdu.id, gone.ID))
		q.click("#express-interest")
		q.wait("the interest form", `!!document.querySelector("#express-form")`)
		found := func() bool {
			_, body := api(t, b, parktoken.Viewer, "GET", "/api/v1/search?scope=club&q="+url.QueryEscape("about to be withdrawn"), nil)
			return strings.Contains(string(body), gone.ID)
		}
		eventually(t, "Haifa's index holding the listing", func() string {
			if !found() {
				return "not found"
			}
			return ""
		})
		// Chengdu withdraws it meanwhile; Haifa's club index learns it.
		if status, body := api(t, a, parktoken.Editor, "DELETE", "/api/v1/projects/"+gone.ID, nil, "If-Match", `"1"`); status != http.StatusNoContent && status != http.StatusOK {
			t.Fatalf("withdraw: %d %s", status, body)
		}
		eventually(t, "Haifa's index dropping the withdrawn listing", func() string {
			if found() {
				return "still found"
			}
			return ""
		})
		q.set(`#express-form [name="message"]`, "Still available?")
		q.set(`#express-form [name="sender_contact.email"]`, "dana@haifa-park.example")
		q.click("#express-send")
		q.waitText("#express-refused", "Cannot send: this listing was withdrawn or is not visible to this park.")
		q.screenshot("interest-refused")
		if _, body := api(t, b, parktoken.Viewer, "GET", "/api/v1/interests?box=sent", nil); strings.Contains(string(body), gone.ID) {
			t.Errorf("a refused interest was stored: %s", body)
		}
	})

	t.Run("phone width", func(t *testing.T) {
		if accepted == "" {
			t.Fatal("no interest was accepted: the first journey failed, so this one cannot run")
		}
		q := pb.on(t)
		q.do("phone viewport", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		defer q.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
		for _, c := range []struct{ name, hash, ready string }{
			{"phone-interests", "#/interests?box=sent", `document.querySelectorAll("#interests li").length > 0`},
			{"phone-interest", "#/interest/" + accepted, `!!document.querySelector("#their-contact")`},
			{"phone-express", fmt.Sprintf("#/express/%s/projects/%s", chengdu.id, lab.ID), `!!document.querySelector("#express-form")`},
		} {
			q.route(c.hash)
			q.wait(c.name, c.ready)
			if why := noOverflow(q); why != "" {
				t.Errorf("%s at 375 px: %s", c.name, why)
			}
		}
	})
}
