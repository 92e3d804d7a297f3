package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// chromiumEnv names the browser binary (the Makefile's unit target sets it
// from deploy/tools/install-chromium.sh).
const chromiumEnv = "PARKMESH_CHROMIUM_BIN"

// startBrowser starts one headless Chromium for the test (and its
// subtests) with a fresh profile. Only loopback is reachable here, so
// everything that would call home is off.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("short: starts a browser and whole parks")
	}
	bin := os.Getenv(chromiumEnv)
	if bin == "" {
		if _, err := os.Stat("/usr/bin/chromium"); err == nil {
			bin = "/usr/bin/chromium"
		}
	}
	if bin == "" {
		t.Fatalf("no Chromium to test the portal with: run deploy/tools/install-chromium.sh (make tools) or set %s", chromiumEnv)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s=%s: %v", chromiumEnv, bin, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true), chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true), chromedp.Flag("password-store", "basic"),
		chromedp.Flag("lang", "zh-CN"), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	// The browser outlives t.Context (which ends before cleanups run).
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("starting Chromium %s: %v", bin, err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// page is one tab in a browser context of its own (its own cookies and
// storage, as another person's browser would have), at one park's portal.
type page struct {
	ctx  context.Context
	base string // the park side's URL
	name string
	t    *testing.T

	mu     sync.Mutex
	errors []string // uncaught exceptions and console errors
}

func newPage(t *testing.T, browser context.Context, name, base string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	p := &page{ctx: ctx, base: base, name: name, t: t}
	if err := chromedp.Listen(ctx, p.listen); err != nil {
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			t.Errorf("%s: the page logged an error: %s", name, e)
		}
		cancel()
	})
	return p
}

func (p *page) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		msg = ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			msg += " " + ev.ExceptionDetails.Exception.Description
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError {
			return
		}
		for _, a := range ev.Args {
			msg += " " + string(a.Value) + a.Description
		}
	default:
		return
	}
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

// on returns the page bound to test t (a subtest), so failures go there.
func (p *page) on(t *testing.T) *page {
	p.t = t
	return p
}

// do runs actions, failing the test with what the page shows.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.fail("%s: %v", what, err)
	}
}

// open loads a URL of the park side (a full page load).
func (p *page) open(path string) {
	p.t.Helper()
	p.do("open "+path, chromedp.Navigate(p.base+path))
}

// route moves the portal to a hash route, as following a link does.
func (p *page) route(hash string) {
	p.t.Helper()
	p.eval("location.hash = "+js(hash), nil)
}

// reload reloads the page.
func (p *page) reload() {
	p.t.Helper()
	p.do("reload", chromedp.Reload())
}

// click clicks the element sel names, once it is visible.
func (p *page) click(sel string) {
	p.t.Helper()
	p.do("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// set gives the form control sel names a value (once it exists), as
// typing would: the value, then an input event.
func (p *page) set(sel, value string) {
	p.t.Helper()
	p.wait("set "+sel, fmt.Sprintf(`(() => {
		const e = document.querySelector(%s);
		if (!e) return false;
		e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true}));
		return e.value === %s;
	})()`, js(sel), js(value), js(value)))
}

// eval evaluates a JavaScript expression, decoding its value into out.
func (p *page) eval(expr string, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.fail("evaluate %s: %v", expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(v, out); err != nil {
			p.fail("evaluate %s: %s: %v", expr, v, err)
		}
	}
}

// wait waits until the JavaScript expression is true. The deadline is
// generous: it bounds a wait, it asserts nothing about speed.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second))); err != nil {
		p.fail("waiting for %s: %v", what, err)
	}
}

// waitText waits until an element sel names contains text.
func (p *page) waitText(sel, text string) {
	p.t.Helper()
	p.wait(fmt.Sprintf("%s to show %q", sel, text), fmt.Sprintf(`[...document.querySelectorAll(%s)].some((e) => e.textContent.includes(%s))`, js(sel), js(text)))
}

// text is the text of the first element sel names ("" when there is none).
func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`(document.querySelector(%s) || {}).innerText || ""`, js(sel)), &s)
	return s
}

// count is the number of elements sel names.
func (p *page) count(sel string) int {
	p.t.Helper()
	var n int
	p.eval(fmt.Sprintf(`document.querySelectorAll(%s).length`, js(sel)), &n)
	return n
}

// visible reports whether sel names an element that is shown.
func (p *page) visible(sel string) bool {
	p.t.Helper()
	var ok bool
	p.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%s); return !!e && !e.closest("[hidden]") && e.getClientRects().length > 0; })()`, js(sel)), &ok)
	return ok
}

// screenshot saves what the tab shows as name.png.
func (p *page) screenshot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	dir := os.Getenv("PARKMESH_SCREENSHOT_DIR")
	if dir == "" {
		dir = p.t.ArtifactDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot %s", path)
}

// fail ends the test with what the page showed.
func (p *page) fail(format string, args ...any) {
	p.t.Helper()
	var body string
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	if v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`)); err == nil {
		body = v
	}
	if len(body) > 3000 {
		body = body[:3000] + "…"
	}
	p.mu.Lock()
	errs := strings.Join(p.errors, "\n")
	p.mu.Unlock()
	p.t.Fatalf("%s: %s\npage:\n%s\npage errors:\n%s", p.name, fmt.Sprintf(format, args...), body, errs)
}

// js quotes s as a JavaScript string.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
