// Package browsertest holds the portal's browser tests: a real Chromium
// (Debian's, installed by deploy/tools/install-chromium.sh, found through
// PARKMESH_CHROMIUM_BIN) driven with chromedp against real parks started
// by deploy/testenv/nodetest, peered through the real handshake. Each
// journey an officer makes is asserted on what the page shows, and
// photographed (PNG) into $PARKMESH_SCREENSHOT_DIR, else the test's
// artifact directory (go test -artifacts keeps them). A missing browser
// fails the tests; -short skips them with the other tests that start
// processes.
package browsertest
