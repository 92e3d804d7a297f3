package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/parkmesh/parkmesh/deploy/testenv/nodetest"
	"github.com/parkmesh/parkmesh/gateway/accounts"
	"github.com/parkmesh/parkmesh/gateway/state"
	"github.com/parkmesh/parkmesh/pkg/listing"
	"github.com/parkmesh/parkmesh/pkg/parktoken"
)

// The two parks of the club the journeys run in, as park IT would start
// them: display names and country on the gateway's flags.
var (
	chengdu = parkID{"chengdu-hitech", "成都高新区", "Chengdu Hi-tech Zone", "CN"}
	haifa   = parkID{"haifa-lifescience", "以色列海法生命科学园", "Haifa Life Science Park", "IL"}
)

type parkID struct{ id, zh, en, country string }

func (p parkID) start(t *testing.T) *nodetest.Park {
	t.Helper()
	return nodetest.StartParkWith(t, p.id, nodetest.Options{GatewayArgs: []string{
		"-park-name-zh", p.zh, "-park-name-en", p.en, "-park-country", p.country}})
}

// addUser creates a staff account in the park's gateway state, as
// `parkmesh user add` does on the node.
func addUser(t *testing.T, p *nodetest.Park, username, display, role, lang, password string) {
	t.Helper()
	db, err := state.Open(t.Context(), p.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := accounts.New(db).Add(t.Context(), accounts.NewUser{Username: username, DisplayName: display, Role: role, Lang: lang, Password: password}); err != nil {
		t.Fatalf("%s: add user %s: %v", p.ID, username, err)
	}
}

// api calls a park's API with a park-local token, as a script does.
func api(t *testing.T, p *nodetest.Park, role parktoken.Role, method, path string, body any, hdr ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	return p.Do(context.Background(), method, path, p.Token(role), r, hdr...)
}

func create(t *testing.T, p *nodetest.Park, l map[string]any) listing.Listing {
	t.Helper()
	kind := l["kind"].(string)
	status, body := api(t, p, parktoken.Editor, "POST", "/api/v1/"+listing.Kind(kind).Collection(), l)
	if status != http.StatusCreated {
		t.Fatalf("%s: create %s: %d %s", p.ID, kind, status, body)
	}
	var out listing.Listing
	json.Unmarshal(body, &out)
	return out
}

// eventually retries check until it returns "" (or fails with its last answer).
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		why := check()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

const password = "correct horse battery staple"

// signIn signs in on the page's sign-in form.
func signIn(p *page, username, pw string) {
	p.t.Helper()
	p.wait("the sign-in form", `!!document.querySelector("#signin")`)
	p.set(`#signin [name="username"]`, username)
	p.set(`#signin [name="password"]`, pw)
	p.click("#signin-submit")
}

// noOverflow reports what overflows the viewport horizontally ("" when nothing).
func noOverflow(p *page) string {
	var r struct {
		Scroll, Width int
		Wide          []string
	}
	p.eval(`(() => {
		const w = window.innerWidth;
		const wide = [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > w + 1)
			.slice(0, 5).map((e) => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className);
		return {scroll: document.documentElement.scrollWidth, width: w, wide};
	})()`, &r)
	if r.Scroll > r.Width {
		return fmt.Sprintf("document.scrollWidth %d > viewport %d (wide: %v)", r.Scroll, r.Width, r.Wide)
	}
	return ""
}

// TestPortalJourneys runs an officer's journeys in a real Chromium against
// two real parks (Consul, services, gateways, peered): sign-in, a club
// search for 新材料 with facets and freshness, a peer's listing, a listing
// created at one park arriving live at the other (across a reload and a
// reconnect), an edit that meets a conflict, the language switch, the
// members page, a viewer's page, and the phone width.
func TestPortalJourneys(t *testing.T) {
	browser := startBrowser(t)
	a, b := chengdu.start(t), haifa.start(t)
	nodetest.Peer(t, a, b)
	addUser(t, a, "li.wei", "李伟", "editor", "zh", password)
	addUser(t, a, "zhao.min", "赵敏", "viewer", "zh", password)
	addUser(t, a, "wang.fang", "王芳", "editor", "zh", password)
	addUser(t, b, "dana", "Dana Levi", "editor", "en", password)

	// What the club holds: Haifa's pilot project, a person who agreed to
	// share their contact, a private project that must never leave Haifa;
	// Chengdu's own organisation and a project shared with Haifa only.
	pilot := create(t, b, map[string]any{"kind": "project", "title": "新材料：石墨烯防腐涂层中试 Graphene anti-corrosion coating pilot",
		"summary": "以色列海法团队的石墨烯防腐涂层已完成中试，寻求在中国的落地园区与投资。A graphene coating for offshore steel, piloted in Haifa.",
		"sectors": []string{"new-materials", "advanced-manufacturing"}, "country": "IL", "city": "Haifa", "seeking": []string{"landing", "investment"},
		"offering": []string{"licensing"}, "visibility": "club",
		"attrs": map[string]any{"stage": "pilot", "trl": 6, "funding_ask": map[string]any{"amount": 5000000, "currency": "USD"}}})
	noa := create(t, b, map[string]any{"kind": "talent", "title": "新材料专家 Prof. Noa Ben-David（高分子复合材料）",
		"summary": "Polymer composites, 20 years at the Technion.", "sectors": []string{"new-materials"}, "country": "IL", "city": "Haifa",
		"offering": []string{"mentoring"}, "visibility": "club",
		"attrs": map[string]any{"expertise": []string{"polymer composites"}, "languages": []string{"en", "he"}, "availability": []string{"advisor"},
			"contact": map[string]any{"email": "noa@example.org", "phone": "+972 4 555 0100"}, "consent": map[string]any{"share_contact": true}}})
	secret := create(t, b, map[string]any{"kind": "project", "title": "新材料 内部评估项目 internal review", "sectors": []string{"new-materials"},
		"country": "IL", "visibility": "private", "attrs": map[string]any{"stage": "idea"}})
	ownOrg := create(t, a, map[string]any{"kind": "organization", "title": "成都新材料产业功能区 Chengdu New Materials Industrial Zone",
		"summary": "成都高新区新材料产业载体，提供中试平台与落地服务。", "sectors": []string{"new-materials"}, "country": "CN", "city": "Chengdu",
		"offering": []string{"landing", "incubation"}, "visibility": "club",
		"attrs": map[string]any{"org_type": "park_office", "website": "https://example.org/chengdu-nm", "founded": 2019, "size": "51-200"}})
	shared := create(t, a, map[string]any{"kind": "project", "title": "新材料 锂电池隔膜 Battery separator film", "sectors": []string{"new-materials", "new-energy"},
		"country": "CN", "seeking": []string{"partner"}, "visibility": "peers", "share_with": []string{haifa.id}, "attrs": map[string]any{"stage": "prototype"}})
	// Enough of Chengdu's own agritech listings for two pages.
	for i := range 21 {
		create(t, a, map[string]any{"kind": "project", "title": fmt.Sprintf("智慧农业示范 %02d Smart farming demo", i+1), "sectors": []string{"agritech"},
			"country": "CN", "visibility": "private", "attrs": map[string]any{"stage": "growth"}})
	}

	// Chengdu's club index copies Haifa's listings (and Haifa's feed is live).
	eventually(t, "Chengdu's club index has Haifa's listings, live", func() string {
		status, body := api(t, a, parktoken.Viewer, "GET", "/api/v1/search?scope=club&q="+url.QueryEscape("新材料"), nil)
		var r struct {
			Results []listing.Listing
			Parks   struct {
				Details []struct{ Park, Status string }
			}
		}
		json.Unmarshal(body, &r)
		seen := map[string]bool{}
		for _, l := range r.Results {
			seen[l.ID] = true
		}
		live := 0
		for _, d := range r.Parks.Details {
			if d.Status == "live" {
				live++
			}
		}
		if status != 200 || !seen[pilot.ID] || !seen[noa.ID] || live != 2 {
			return fmt.Sprintf("%d %s", status, body)
		}
		return ""
	})

	pa := newPage(t, browser, "Chengdu officer", a.GatewayURL)

	t.Run("sign in with a password", func(t *testing.T) {
		p := pa.on(t)
		p.open("/")
		signIn(p, "li.wei", "not the password at all")
		p.waitText("#signin-error", "用户名或密码不正确")
		p.screenshot("signin-error")
		signIn(p, "li.wei", password)
		p.waitText("#signed-in-as", "李伟")
		if got := p.text("#signed-in-as"); got != "已登录：李伟（编辑者）" {
			t.Errorf("signed in as: %q", got)
		}
		if n := p.count("#signin-error"); n != 0 || p.text("#flash") != "" {
			t.Errorf("after a good sign-in the old error is still there (%d error, flash %q)", n, p.text("#flash"))
		}
		if got := p.text("#park"); got != chengdu.zh {
			t.Errorf("header park: %q, want %q", got, chengdu.zh)
		}
		p.screenshot("signin")
		// Sign out: back to the form, and a reload keeps it so.
		p.click("#logout")
		p.waitText("#flash", "已退出登录")
		p.reload()
		p.wait("the sign-in form after a reload", `!!document.querySelector("#signin")`)
		if p.count("#signed-in-as") != 0 {
			t.Error("still signed in after signing out and reloading")
		}
		signIn(p, "li.wei", password)
		p.waitText("#signed-in-as", "李伟")
	})

	t.Run("sign-in throttled", func(t *testing.T) {
		p := newPage(t, browser, "someone guessing", a.GatewayURL)
		p.open("/")
		for i := 0; ; i++ {
			signIn(p, "wang.fang", fmt.Sprintf("wrong guess number %d", i))
			p.wait("an answer", `!document.querySelector("#signin-submit").disabled && !document.querySelector("#signin-error").hidden`)
			if strings.Contains(p.text("#signin-error"), "登录尝试过多") {
				break
			}
			if i > 10 {
				t.Fatalf("never throttled: %q", p.text("#signin-error"))
			}
			p.eval(`document.querySelector("#signin-error").hidden = true`, nil)
		}
		p.screenshot("signin-throttled")
	})

	t.Run("search 新材料 across the club", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/search?scope=club&q=" + url.QueryEscape("新材料"))
		card := fmt.Sprintf(`li.result[data-id=%q]`, pilot.ID)
		p.wait("Haifa's pilot among the results", fmt.Sprintf(`!!document.querySelector(%s)`, js(card)))
		p.wait("Haifa's expert among the results", fmt.Sprintf(`!!document.querySelector('li.result[data-id=%q]')`, noa.ID))
		if got := p.text(card + " .park-name"); got != haifa.zh {
			t.Errorf("the pilot's park: %q, want %q", got, haifa.zh)
		}
		if p.count(fmt.Sprintf(`li.result[data-id=%q]`, secret.ID)) != 0 {
			t.Error("Haifa's private listing is shown in Chengdu")
		}
		view := p.text("#view")
		for _, id := range []string{chengdu.id, haifa.id} {
			if strings.Contains(view, id) {
				t.Errorf("the page shows the park id %q", id)
			}
		}
		for _, pk := range []parkID{chengdu, haifa} {
			got := p.text(fmt.Sprintf(`#freshness li[data-park=%q]`, pk.id))
			if !strings.Contains(got, pk.zh) || !strings.Contains(got, "实时") {
				t.Errorf("freshness of %s: %q, want its name and 实时", pk.id, got)
			}
		}
		// Facets: every result is 新材料; Haifa's count is its two listings.
		results := p.count("li.result")
		if results < 4 {
			t.Errorf("%d results, want at least Haifa's 2 and Chengdu's 2", results)
		}
		if got := p.text(`[data-facet="sectors"] a[data-value="new-materials"] .facet-label`) + " " + p.text(`[data-facet="sectors"] a[data-value="new-materials"] .count`); got != fmt.Sprintf("新材料 %d", results) {
			t.Errorf("sector facet: %q, want 新材料 %d", got, results)
		}
		// The counts are the server's (every match), not the loaded page's.
		if p.count(`#facets-note[data-source="server"]`) != 1 {
			t.Errorf("facet note %q: want the server's counts", p.text("#facets-note"))
		}
		if got := p.text(`[data-facet="parks"] a[data-value="haifa-lifescience"] .facet-label`) + " " + p.text(`[data-facet="parks"] a[data-value="haifa-lifescience"] .count`); got != haifa.zh+" 2" {
			t.Errorf("park facet: %q, want %q", got, haifa.zh+" 2")
		}
		if got := p.text(fmt.Sprintf(`li.result[data-id=%q] .vis`, shared.ID)); got != "共享给："+haifa.zh {
			t.Errorf("visibility badge of the shared project: %q", got)
		}
		if got := p.text(fmt.Sprintf(`li.result[data-id=%q] .vis`, ownOrg.ID)); got != "全俱乐部可见" {
			t.Errorf("visibility badge of the club-wide organisation: %q", got)
		}
		p.screenshot("search-club")
		// A facet narrows the search: Haifa's listings only.
		p.click(`[data-facet="parks"] a[data-value="haifa-lifescience"]`)
		p.waitText("#active-filters", haifa.zh)
		p.wait("two results", `document.querySelectorAll("li.result").length === 2`)
	})

	t.Run("paging", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/search?scope=local&sectors=agritech")
		p.wait("a first page of 20", `document.querySelectorAll("li.result").length === 20 && !document.querySelector("#more").hidden`)
		p.click("#more")
		p.wait("the second page", `document.querySelectorAll("li.result").length === 21`)
		if !strings.Contains(p.text("#result-count"), "21") || p.visible("#more") {
			t.Errorf("after the last page: %q, more shown %v", p.text("#result-count"), p.visible("#more"))
		}
	})

	t.Run("open a peer's listing", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/search?scope=club&q=" + url.QueryEscape("新材料"))
		p.click(fmt.Sprintf(`li.result[data-id=%q] a.result-title`, pilot.ID))
		p.waitText("#listing-title", "石墨烯防腐涂层")
		if got := p.text("#origin-park"); got != haifa.zh {
			t.Errorf("origin park: %q", got)
		}
		facts := p.text("#listing")
		for _, want := range []string{"以色列海法团队的石墨烯防腐涂层", "新材料", "先进制造", "落地园区", "投资", "技术许可", "中试", "5,000,000 美元", "以色列", "最近更新"} {
			if !strings.Contains(facts, want) {
				t.Errorf("the listing's page lacks %q:\n%s", want, facts)
			}
		}
		if p.count("#edit") != 0 || p.count("#stale-badge") != 0 {
			t.Error("a peer's fresh listing shows edit controls or a stale badge")
		}
		p.screenshot("listing-peer")
		// A person who consented: their contact is shown.
		p.route(fmt.Sprintf("#/listing/%s/talent/%s", haifa.id, noa.ID))
		p.waitText("#contact", "noa@example.org")
		// Chengdu's own organisation: website, visibility, edit controls.
		p.route(fmt.Sprintf("#/listing/%s/organizations/%s", chengdu.id, ownOrg.ID))
		p.waitText("#listing-title", "成都新材料产业功能区")
		if p.count(`a.website[href="https://example.org/chengdu-nm"]`) != 1 || !p.visible("#edit") || p.text("#visibility") != "全俱乐部可见" {
			t.Errorf("own listing: website %d, edit %v, visibility %q", p.count("a.website"), p.visible("#edit"), p.text("#visibility"))
		}
	})

	pb := newPage(t, browser, "Haifa officer", b.GatewayURL)
	var created string
	title := "新材料 Perovskite solar film — 钙钛矿薄膜 " + time.Now().Format("150405")

	t.Run("a listing created at Haifa arrives live in Chengdu", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/live")
		p.waitText("#live-state", "已连接")

		q := pb.on(t)
		q.open("/")
		signIn(q, "dana", password)
		q.waitText("#signed-in-as", "Signed in as Dana Levi (editor)")
		q.route("#/new/projects")
		q.wait("the new listing form", `!!document.querySelector("#edit-form")`)
		if got := q.text("#park"); got != haifa.en {
			t.Errorf("Haifa's header: %q", got)
		}
		var country string
		q.eval(`document.querySelector('#edit-form [name="country"]').value`, &country)
		if country != "IL" {
			t.Errorf("country prefilled %q, want the park's IL", country)
		}
		q.set(`#edit-form [name="title"]`, title)
		q.set(`#edit-form [name="summary"]`, "Perovskite tandem film from Haifa, looking for a pilot line in China.")
		q.click(`#edit-form input[name="sectors"][value="new-materials"]`)
		q.click(`#edit-form input[name="seeking"][value="landing"]`)
		q.set(`#edit-form select[name="attrs.stage"]`, "prototype")
		q.click("#save")
		q.waitText("#listing-title", title)
		q.waitText("#flash", "Created.")
		q.eval(`document.querySelector("#listing").dataset.id`, &created)

		ev := fmt.Sprintf(`#events li[data-id=%q]`, created)
		p.waitText(ev, title)
		if got := p.text(ev); !strings.Contains(got, "新增") || !strings.Contains(got, haifa.zh) || !strings.Contains(got, "项目") {
			t.Errorf("the live event: %q", got)
		}
		p.screenshot("live-arrival")

		// A reload keeps the list and resumes where it was.
		p.reload()
		p.waitText("#live-state", "已从上次位置恢复")
		p.waitText(ev, title)
		// Away from the live view (its stream closed), Haifa adds another:
		// back on the live view it arrives, resumed from the saved position.
		p.route("#/members")
		p.wait("the members page", `!!document.querySelector("#members")`)
		later := create(t, b, map[string]any{"kind": "project", "title": "新材料 while you were away 离开期间的新项目", "sectors": []string{"new-materials"},
			"country": "IL", "visibility": "club", "attrs": map[string]any{"stage": "idea"}})
		p.route("#/live")
		p.waitText(fmt.Sprintf(`#events li[data-id=%q]`, later.ID), "离开期间的新项目")
		if p.count(ev) != 1 {
			t.Errorf("the first event is listed %d times after resuming", p.count(ev))
		}
		// A filter: only what Haifa's talent does passes.
		p.set(`#live-filter select[name="kinds"]`, "talent")
		p.click("#live-apply")
		p.waitText("#live-state", "已连接")
		create(t, b, map[string]any{"kind": "project", "title": "filtered out 不应出现", "sectors": []string{"other"}, "country": "IL", "visibility": "club", "attrs": map[string]any{"stage": "idea"}})
		tal := create(t, b, map[string]any{"kind": "talent", "title": "新材料 talent passes the filter 人才", "sectors": []string{"new-materials"}, "country": "IL", "visibility": "club"})
		p.waitText(fmt.Sprintf(`#events li[data-id=%q]`, tal.ID), "人才")
		if strings.Contains(p.text("#events"), "不应出现") {
			t.Error("the live filter let a project through")
		}
	})

	t.Run("edit with a conflict", func(t *testing.T) {
		if created == "" {
			t.Fatal("no listing was created: the live journey failed, so this one cannot run")
		}
		q := pb.on(t)
		q.route("#/edit/projects/" + created)
		q.wait("the edit form", `!!document.querySelector("#edit-form")`)
		q.set(`#edit-form [name="title"]`, title+" (edited in the page)")
		// Meanwhile a colleague's script changes it.
		status, body := api(t, b, parktoken.Editor, "GET", "/api/v1/projects/"+created, nil)
		var cur map[string]any
		if err := json.Unmarshal(body, &cur); status != 200 || err != nil {
			t.Fatalf("GET: %d %s", status, body)
		}
		cur["title"] = title + " (changed through the API)"
		if status, body = api(t, b, parktoken.Editor, "PUT", "/api/v1/projects/"+created, cur, "If-Match", `"1"`); status != 200 {
			t.Fatalf("PUT: %d %s", status, body)
		}
		q.click("#save")
		q.waitText("#conflict", "Conflict: someone changed this listing after you opened it (it is now version 2)")
		_, body = api(t, b, parktoken.Editor, "GET", "/api/v1/projects/"+created, nil)
		if !strings.Contains(string(body), "(changed through the API)") {
			t.Errorf("the page overwrote the other change: %s", body)
		}
		q.screenshot("edit-conflict")
		q.click("#reload-latest")
		q.wait("the latest version in the form", fmt.Sprintf(`document.querySelector('#edit-form [name="title"]')?.value === %s`, js(title+" (changed through the API)")))
		// An error the API names a field for is shown at that field.
		q.set(`#edit-form [name="title"]`, "")
		q.click("#save")
		q.waitText(`[data-field="title"] .field-error`, "Required")
		var invalid string
		q.eval(`document.querySelector('#edit-form [name="title"]').getAttribute("aria-invalid") || ""`, &invalid)
		if invalid != "true" {
			t.Errorf("the title is not marked invalid (%q)", invalid)
		}
		q.screenshot("edit-field-error")
		q.set(`#edit-form [name="title"]`, title+" v3")
		q.click("#save")
		q.waitText("#listing-title", title+" v3")
		q.waitText("#flash", "Saved.")
	})

	t.Run("switch language", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/search?scope=club&q=" + url.QueryEscape("新材料"))
		card := fmt.Sprintf(`li.result[data-id=%q]`, pilot.ID)
		p.wait("results", fmt.Sprintf(`!!document.querySelector(%s)`, js(card)))
		p.click("#lang")
		p.waitText("#nav", "Search")
		p.wait("English results", fmt.Sprintf(`!!document.querySelector(%s)?.textContent.includes("New materials")`, js(card)))
		for sel, want := range map[string]string{
			card + " .park-name": haifa.en, "#signed-in-as": "Signed in as 李伟 (editor)", "#park": chengdu.en,
			fmt.Sprintf(`#freshness li[data-park=%q] .badge`, haifa.id): "live", "#lang": "中文",
		} {
			if got := p.text(sel); got != want {
				t.Errorf("in English, %s: %q, want %q", sel, got, want)
			}
		}
		p.screenshot("search-en")
		// The choice is the user's: another browser signed in as li.wei gets English.
		other := newPage(t, browser, "li.wei elsewhere", a.GatewayURL)
		other.open("/")
		signIn(other, "li.wei", password)
		other.waitText("#signed-in-as", "Signed in as 李伟 (editor)")
		// And back to Chinese.
		p.click("#lang")
		p.waitText("#nav", "检索")
		p.wait("Chinese results", fmt.Sprintf(`document.querySelector(%s + " .park-name")?.textContent === %s`, js(card), js(haifa.zh)))
		// Before sign-in, the choice stays in this browser.
		anon := newPage(t, browser, "not signed in", a.GatewayURL)
		anon.open("/")
		anon.wait("the sign-in form", `!!document.querySelector("#signin")`)
		anon.click("#lang")
		anon.waitText("#signin h1", "Sign in")
		anon.reload()
		anon.waitText("#signin h1", "Sign in")
	})

	t.Run("members", func(t *testing.T) {
		p := pa.on(t)
		p.route("#/members")
		row := fmt.Sprintf(`#members tr[data-park=%q]`, haifa.id)
		p.waitText(row, haifa.zh)
		got := p.text(row)
		for _, want := range []string{haifa.zh, haifa.en, "以色列", "动态已连接", "秒"} {
			if !strings.Contains(got, want) {
				t.Errorf("Haifa's row lacks %q: %q", want, got)
			}
		}
		if since := p.text(row + " td:last-child"); since == "" || since == "—" {
			t.Errorf("Haifa's member since: %q", since)
		}
		if self := p.text(fmt.Sprintf(`#members tr[data-park=%q]`, chengdu.id)); !strings.Contains(self, chengdu.zh) || !strings.Contains(self, "中国") || !strings.Contains(self, "本园区") {
			t.Errorf("own row: %q", self)
		}
		p.screenshot("members")
	})

	t.Run("a viewer sees no edit controls and is refused", func(t *testing.T) {
		v := newPage(t, browser, "Chengdu viewer", a.GatewayURL)
		v.open("/")
		signIn(v, "zhao.min", password)
		v.waitText("#signed-in-as", "赵敏（查看者）")
		if v.visible("#nav-new") {
			t.Error("a viewer is offered to create listings")
		}
		v.route(fmt.Sprintf("#/listing/%s/organizations/%s", chengdu.id, ownOrg.ID))
		v.waitText("#listing-title", "成都新材料产业功能区")
		if v.count("#edit") != 0 || v.count("#withdraw") != 0 {
			t.Error("a viewer sees edit or withdraw controls")
		}
		var status int
		v.eval(`(async () => {
			const s = await (await fetch("/api/v1/session")).json();
			const r = await fetch("/api/v1/projects", {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": s.csrf_token},
				body: JSON.stringify({title: "viewer write", sectors: ["other"], country: "CN", attrs: {stage: "idea"}})});
			return r.status;
		})()`, &status)
		if status != http.StatusForbidden {
			t.Errorf("a viewer's write: %d, want 403", status)
		}
	})

	t.Run("phone width", func(t *testing.T) {
		p := pa.on(t)
		p.do("phone viewport", chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
		defer p.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
		for _, c := range []struct{ name, hash, ready string }{
			{"phone-search", "#/search?scope=club&q=" + url.QueryEscape("新材料"), `document.querySelectorAll("li.result").length > 3`},
			{"phone-listing", fmt.Sprintf("#/listing/%s/projects/%s", haifa.id, pilot.ID), `!!document.querySelector("#listing-title")`},
			{"phone-new", "#/new/projects", `!!document.querySelector("#edit-form")`},
			{"phone-live", "#/live", `document.querySelectorAll("#events li").length > 0`},
			{"phone-members", "#/members", `!!document.querySelector("#members")`},
		} {
			p.route(c.hash)
			p.wait(c.name, c.ready)
			if why := noOverflow(p); why != "" {
				t.Errorf("%s at 375 px: %s", c.name, why)
			}
			if c.name == "phone-search" || c.name == "phone-listing" {
				p.screenshot(c.name)
			}
		}
	})
}
