package console_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/portcullis-dev/portcullis/authoritytest"
	"github.com/portcullis-dev/portcullis/client"
	pb "github.com/portcullis-dev/portcullis/gen/portcullis/v1"
)

// screenshotsEnv names the directory the browser test writes a screenshot
// of each page to (make screenshots sets it to docs/console).
const screenshotsEnv = "PORTCULLIS_SCREENSHOTS"

// chromium finds Debian's chromium. Without it the browser test skips,
// except under CI=true, where it fails (.ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; under CI=true the browser test must run (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); skipping the browser test")
	return ""
}

// TestBrowserBanEnforceLiftAuditSignOut drives the console in a real
// headless Chromium: sign in with the bootstrap key, ban a user for a
// duration, watch "enforced by N/N mirrors" reach N live while one mirror
// is held back, see the user's token refused by the mirrors, lift the ban,
// find both records in the audit page, sign out, and see the old cookie
// refused.
func TestBrowserBanEnforceLiftAuditSignOut(t *testing.T) {
	exe := chromium(t)
	a, srv := consoleServer(t, authoritytest.Options{})
	// A hang guard, not a timing requirement.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Three mirrors; the third can be held back before it applies anything.
	var hold atomic.Bool
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseAll)
	var mirrors []*client.Mirror
	for i := range 3 {
		var opts []client.Option
		if i == 2 {
			opts = append(opts, authoritytest.BeforeWatchMessage(func(*pb.WatchResponse) {
				if hold.Load() {
					<-release
				}
			}))
		}
		m, stop, err := client.StartMirror(ctx, a.Dial(opts...), client.MirrorOptions{Clock: a.Clock().Now,
			Identity: client.MirrorIdentity{Service: "api", InstanceID: fmt.Sprintf("api-%d", i+1)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
		mirrors = append(mirrors, m)
	}
	admin := a.Dial()
	sess, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: "mallory", DeviceId: "laptop-7", ClientIp: "203.0.113.9"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := admin.Sessions.CreateSession(ctx, &pb.CreateSessionRequest{TenantId: "acme", UserId: u, ClientIp: "198.51.100.4"}); err != nil {
			t.Fatal(err)
		}
	}
	token := sess.GetAccessToken()
	for _, m := range mirrors {
		if _, err := m.Check(ctx, token, client.CheckInput{}); err != nil {
			t.Fatalf("before the ban the mirror refuses the token: %v", err)
		}
	}

	allocOpts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-gpu", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, allocOpts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	shots := newScreenshots(t)

	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(bctx, actions...); err != nil {
			var page string
			_ = chromedp.Run(bctx, chromedp.OuterHTML("html", &page))
			t.Fatalf("%s: %v\npage:\n%s", what, err, page)
		}
	}
	text := func(sel string) string {
		t.Helper()
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	// waitText waits until an element's text is want, as a live update
	// sets it, without reloading the page.
	waitText := func(sel, want string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.trim() === %q; })()`, sel, want)
		run("wait for "+sel+" = "+want, chromedp.Poll(js, nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(2*time.Minute)))
	}

	run("sign in", chromedp.Navigate(srv.URL+"/console/login"), chromedp.WaitVisible("#key", chromedp.ByID))
	shots.take(bctx, "login")
	run("sign in", chromedp.SendKeys("#key", a.AdminKey, chromedp.ByID), chromedp.Click("#signin", chromedp.ByID),
		chromedp.WaitVisible("#ban-form", chromedp.ByID))
	if got := text("#key-name"); got != "bootstrap-admin" {
		t.Fatalf("signed in as %q, want bootstrap-admin", got)
	}

	hold.Store(true)
	run("ban mallory", chromedp.SendKeys("#ban-tenant", "acme", chromedp.ByID), chromedp.SendKeys("#ban-value", "mallory", chromedp.ByID),
		chromedp.SendKeys("#ban-duration", "2h", chromedp.ByID), chromedp.SendKeys("#ban-reason", "credential stuffing", chromedp.ByID),
		chromedp.Click("#ban-submit", chromedp.ByID), chromedp.WaitVisible("#notice", chromedp.ByID))
	if n := text("#notice"); !strings.Contains(n, "sessions revoked: 1") {
		t.Errorf("notice %q does not count the revoked session", n)
	}
	// Two mirrors apply the ban; the third is held, so the page shows 2/3
	// and must reach 3/3 by itself once it is released.
	waitText(".enf", "enforced by 2/3 mirrors")
	shots.take(bctx, "ban-rollout")
	releaseAll()
	waitText(".enf", "enforced by 3/3 mirrors")
	waitText(".rollout", "api/api-1api/api-2api/api-3")
	var lacking int
	run("rollout", chromedp.Evaluate(`document.querySelectorAll(".rollout .lacks").length`, &lacking))
	if lacking != 0 {
		t.Errorf("the rollout picture shows %d mirrors without the ban after all applied it", lacking)
	}
	for i, m := range mirrors {
		if _, err := m.Check(ctx, token, client.CheckInput{}); !errors.Is(err, client.ErrUserBanned) && !errors.Is(err, client.ErrSessionRevoked) {
			t.Errorf("mirror %d after the ban: %v, want the token refused", i+1, err)
		}
	}

	run("list bans", chromedp.Navigate(srv.URL+"/console/bans?state=active"), chromedp.WaitVisible("#bans", chromedp.ByID))
	if list := text("#bans"); !strings.Contains(list, "user:mallory") || !strings.Contains(list, "credential stuffing") {
		t.Fatalf("the ban is not listed:\n%s", list)
	}
	waitText("#bans .enf", "enforced by 3/3 mirrors")
	shots.take(bctx, "bans")

	run("lift", chromedp.Click("#bans a[href^='/console/bans/ban_']", chromedp.ByQuery), chromedp.WaitVisible("#lift-form", chromedp.ByID),
		chromedp.SendKeys("#lift-reason", "appeal granted", chromedp.ByID), chromedp.Click("#lift", chromedp.ByID),
		chromedp.WaitVisible("#notice", chromedp.ByID))
	if n := text("#notice"); !strings.Contains(n, "lifted") {
		t.Fatalf("notice after lifting: %q", n)
	}
	shots.take(bctx, "ban")
	if trail := text("#ban-trail"); !strings.Contains(trail, "ban.create") || !strings.Contains(trail, "ban.lift") {
		t.Errorf("the ban's page does not show its audit trail:\n%s", trail)
	}
	if banned(t, a, "acme", "mallory") {
		t.Fatal("mallory is still banned after the lift")
	}

	run("audit", chromedp.Click("#ban-audit", chromedp.ByID), chromedp.WaitVisible("#audit", chromedp.ByID))
	audit := text("#audit")
	for _, want := range []string{"ban.create", "ban.lift", "bootstrap-admin", "console", "127.0.0.1:", "appeal granted"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit page lacks %q:\n%s", want, audit)
		}
	}
	if strings.Contains(audit, "console 127.0.0.1:") {
		t.Errorf("the audit page's address still names the console (the channel is its own column):\n%s", audit)
	}
	shots.take(bctx, "audit")

	run("sessions", chromedp.Navigate(srv.URL+"/console/sessions?tenant=acme&user=mallory&all=on"), chromedp.WaitVisible("#sessions", chromedp.ByID))
	if s := text("#sessions"); !strings.Contains(s, "laptop-7") || !strings.Contains(s, "203.0.113.9") {
		t.Errorf("the sessions page does not show mallory's session:\n%s", s)
	}
	shots.take(bctx, "sessions")
	run("fleet", chromedp.Navigate(srv.URL+"/console/fleet"), chromedp.WaitVisible("#fleet", chromedp.ByID))
	if f := text("#fleet"); !strings.Contains(f, "api/api-3") {
		t.Errorf("the fleet page does not list the mirrors:\n%s", f)
	}
	shots.take(bctx, "fleet")
	run("keys", chromedp.Navigate(srv.URL+"/console/keys"), chromedp.WaitVisible("#keys", chromedp.ByID))
	shots.take(bctx, "keys")
	run("API keys", chromedp.Navigate(srv.URL+"/console/apikeys"), chromedp.WaitVisible("#apikeys", chromedp.ByID))
	shots.take(bctx, "apikeys")

	var cookies []*network.Cookie
	run("read the cookie", chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{srv.URL}).Do(ctx)
		return err
	}))
	if len(cookies) != 1 || !cookies[0].HTTPOnly || cookies[0].SameSite != network.CookieSameSiteStrict {
		t.Fatalf("browser cookies: %+v; want one HttpOnly SameSite=Strict cookie", cookies)
	}
	run("sign out", chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#login-form", chromedp.ByID))
	run("after sign-out", chromedp.Navigate(srv.URL+"/console/bans"), chromedp.WaitVisible("#login-form", chromedp.ByID))
	old := browser(t)
	u, _ := url.Parse(srv.URL)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: cookies[0].Name, Value: cookies[0].Value}})
	if resp, _ := get(t, old, srv.URL+"/console/bans"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("the old cookie after sign-out: %s to %q, want 303 to sign-in", resp.Status, resp.Header.Get("Location"))
	}
}

// screenshots writes full-page PNGs under $PORTCULLIS_SCREENSHOTS when it is
// set (make screenshots), and does nothing otherwise.
type screenshots struct {
	t   *testing.T
	dir string
}

func newScreenshots(t *testing.T) *screenshots {
	dir := os.Getenv(screenshotsEnv)
	if dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return &screenshots{t: t, dir: dir}
}

func (s *screenshots) take(ctx context.Context, name string) {
	s.t.Helper()
	if s.dir == "" {
		return
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".png"), png, 0o644); err != nil {
		s.t.Fatal(err)
	}
}
