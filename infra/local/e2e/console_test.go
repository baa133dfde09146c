package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"waooaw.dev/governance/infra/local/apiclient"
)

// browser is one headless Debian chromium for the test binary; each user signs in in a tab
// of their own (the console keeps its token in the tab's sessionStorage).
var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
)

func chromium(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browserErr = fmt.Errorf("no chromium on PATH (Debian's package; .ci/run installs it): %w", err)
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900), chromedp.Flag("disable-dev-shm-usage", true))
		alloc, _ := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, _ := chromedp.NewContext(alloc)
		if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
			browserErr = fmt.Errorf("start chromium %s: %w", path, err)
			return
		}
		browserCtx = ctx
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// tab is one user's console in a tab of its own.
type tab struct {
	t   *testing.T
	ctx context.Context
	url string // the gateway's /console/
}

func newTab(t *testing.T, ctx context.Context) *tab {
	t.Helper()
	tctx, cancel := chromedp.NewContext(chromium(t))
	t.Cleanup(cancel)
	// The scenario's deadline bounds every step in the tab.
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-tctx.Done():
		}
	}()
	return &tab{t: t, ctx: tctx, url: shared.client().Gateway + "/console/"}
}

func (b *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("console: %s: %v\n%s", what, err, b.notice())
	}
}

// eval runs a JavaScript expression in the page and decodes its value.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("console: %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the expression is truthy in the page.
func (b *tab) waitFor(what, expr string, d time.Duration) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(d))); err != nil {
		b.t.Fatalf("console: waiting %s for %s: %v\nnotice: %s", d, what, err, b.notice())
	}
}

func (b *tab) notice() string {
	v, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById("notice") ? document.getElementById("notice").textContent : ""`))
	return v
}

// signIn uses the development sign-in as a person would: role, subject, engagement.
func (b *tab) signIn(role, subject, engagement string) {
	b.t.Helper()
	b.do("open the sign-in page", chromedp.Navigate(b.url))
	b.waitFor("the development sign-in", `!document.getElementById("dev-form").hidden`, 10*time.Second)
	b.do("sign in", chromedp.SetValue(chromedp.ID("dev-role"), role), chromedp.SetValue(chromedp.ID("dev-subject"), subject),
		chromedp.SetValue(chromedp.ID("dev-engagement"), engagement), chromedp.Click(chromedp.ID("dev-signin")))
	b.waitFor("the approvals page", `!document.getElementById("page-approvals").hidden && document.getElementById("approvals-updated").textContent !== ""`, 15*time.Second)
	if who := eval[string](b, `document.getElementById("who-text").textContent`); !strings.Contains(who, subject) || !strings.Contains(who, role) {
		b.t.Fatalf("signed in as %q; want %s as %s", who, subject, role)
	}
}

func (b *tab) open(hash string) {
	b.t.Helper()
	b.do("open "+hash, chromedp.Evaluate[chromedp.Void](`location.hash = `+jsString(hash)+`; undefined`))
}

// screenshot writes the page as docs/console/<name>.png.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join(shared.root, "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cardOf is the CSS selector of the card of a request's approval.
func cardOf(requestID string) string { return `li.card[data-request=` + jsString(requestID) + `]` }

var countdownRE = regexp.MustCompile(`^(\d+h )?\d\dm \d\ds left$`)

// TestConsole drives the Governor's console in headless chromium through the running stack:
// a Governor signs in, sees a pending approval with its live countdown, approves it and the
// request is deployed; a viewer's decision is refused in the API's words; the Governor of
// another engagement sees none of it. The veto path moves the clock, so it runs in
// TestAgentCreationOnTheClock (testConsoleVetoWindow, testConsoleVeto).
func TestConsole(t *testing.T) {
	ctx := ctxFor(t, 4*time.Minute)
	p := newParty(t, ctx)
	gov := newTab(t, ctx)

	// First load of a fresh tab: every byte the browser received until the sign-in is usable.
	var mu sync.Mutex
	var bytes float64
	requests := 0
	if err := chromedp.Listen(gov.ctx, func(ev any) {
		if e, ok := ev.(*network.EventLoadingFinished); ok {
			mu.Lock()
			bytes += e.EncodedDataLength
			requests++
			mu.Unlock()
		}
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	gov.do("first load", chromedp.Navigate(gov.url))
	gov.waitFor("a usable sign-in", `document.body.dataset.ready === "true" && !document.getElementById("dev-form").hidden`, 10*time.Second)
	usable := time.Since(start)
	mu.Lock()
	firstBytes, firstRequests := bytes, requests
	mu.Unlock()
	gov.screenshot("signin")
	gov.signIn("governor", "gov-"+p.eng, p.eng)

	// Signed in, reloaded: the page and its first list of approvals.
	mu.Lock()
	bytes, requests = 0, 0
	mu.Unlock()
	start = time.Now()
	gov.do("reload signed in", chromedp.Reload())
	gov.waitFor("the first list", `document.getElementById("approvals-updated").textContent !== ""`, 10*time.Second)
	listed := time.Since(start)
	mu.Lock()
	reloadBytes, reloadRequests := bytes, requests
	mu.Unlock()

	// A new request reaches its blocking approval while the Governor watches the page.
	submitted := time.Now()
	id := p.submit(t, ctx, apiclient.LowRiskSpec(p.eng, randomID("Console catalogue writer ")), apiclient.WayOfWorking())
	var inAPI time.Duration
	apiDone := make(chan struct{})
	go func() {
		defer close(apiDone)
		for ctx.Err() == nil {
			if list, err := p.gov.Pending(ctx); err == nil && slices.ContainsFunc(list, func(a apiclient.Approval) bool { return a.RequestID == id }) {
				inAPI = time.Since(submitted)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	gov.waitFor("the new approval's card", `document.querySelector(`+jsString(cardOf(id))+`) !== null`, 90*time.Second)
	onPage := time.Since(submitted)
	<-apiDone
	card := cardOf(id)
	first := eval[string](gov, `document.querySelector(`+jsString(card+" .countdown")+`).textContent`)
	time.Sleep(1500 * time.Millisecond)
	second := eval[string](gov, `document.querySelector(`+jsString(card+" .countdown")+`).textContent`)
	if !countdownRE.MatchString(first) || !countdownRE.MatchString(second) || first == second {
		t.Fatalf("countdown %q then %q; want a live countdown such as 3h 59m 58s left", first, second)
	}
	if asked := eval[string](gov, `document.querySelector(`+jsString(card)+`).textContent`); !strings.Contains(asked, "deployment") || !strings.Contains(asked, "Stage 6") {
		t.Fatalf("the card says %q; want the deployment asked at stage 6", asked)
	}
	gov.screenshot("approvals")

	// A viewer of the same engagement sees the approval; deciding is refused by the policy.
	viewer := newTab(t, ctx)
	viewer.signIn("viewer", "viewer-"+p.eng, p.eng)
	viewer.waitFor("the viewer's list", `document.querySelector(`+jsString(card)+`) !== null`, 10*time.Second)
	viewer.do("viewer approves", chromedp.SetValue(chromedp.CSS(card+" .reason"), "looks fine"), chromedp.Click(chromedp.CSS(card+" .approve")))
	viewer.waitFor("the refusal", `document.querySelector(`+jsString(card+" .result.bad")+`) !== null`, 15*time.Second)
	if msg := eval[string](viewer, `document.querySelector(`+jsString(card+" .result")+`).textContent`); !strings.HasPrefix(msg, "403: forbidden") || !strings.Contains(msg, "viewer") {
		t.Fatalf("the viewer's approval answered %q; want the API's 403 naming the viewer's role", msg)
	}
	if eval[bool](viewer, `document.querySelector(`+jsString(card+" .acknowledge:not([hidden])")+`) !== null`) {
		t.Fatal("the viewer is offered Acknowledge")
	}
	viewer.screenshot("viewer-refused")

	// The Governor of another engagement sees none of it, and the timeline is refused.
	other := newParty(t, ctx)
	stranger := newTab(t, ctx)
	stranger.signIn("governor", "gov-"+other.eng, other.eng)
	if n := eval[int](stranger, `document.querySelectorAll("#approvals-list li.card").length`); n != 0 {
		t.Fatalf("another engagement's Governor sees %d approvals; want none", n)
	}
	if !eval[bool](stranger, `!document.getElementById("approvals-empty").hidden`) {
		t.Fatal("another engagement's Governor is not told that nothing waits")
	}
	stranger.open("#request/" + id)
	stranger.waitFor("the refusal", `document.getElementById("notice").textContent.startsWith("403")`, 10*time.Second)
	if msg := stranger.notice(); !strings.Contains(msg, other.eng) && !strings.Contains(msg, "gov-"+other.eng) {
		t.Fatalf("the other Governor's timeline says %q; want the API's refusal naming them", msg)
	}

	// The Governor acknowledges (the reminders stop; the approval still waits), then approves.
	gov.waitFor("the Acknowledge button", `document.querySelector(`+jsString(card+" .acknowledge:not([hidden])")+`) !== null`, 30*time.Second)
	gov.do("acknowledge", chromedp.Click(chromedp.CSS(card+" .acknowledge")))
	gov.waitFor("the acknowledgement", `document.querySelector(`+jsString(card+" .ack-state.done")+`) !== null`, 20*time.Second)
	if msg := eval[string](gov, `document.querySelector(`+jsString(card+" .ack-state")+`).textContent`); !strings.Contains(msg, "Acknowledged by user:gov-"+p.eng) {
		t.Fatalf("after acknowledging the card says %q", msg)
	}
	// The Governor approves with a reason; the request goes on to deployed.
	gov.do("approve", chromedp.SetValue(chromedp.CSS(card+" .reason"), "checked the catalogue scope"), chromedp.Click(chromedp.CSS(card+" .approve")))
	gov.waitFor("the decision", `document.querySelector(`+jsString(card+" .result.done")+`) !== null`, 20*time.Second)
	if msg := eval[string](gov, `document.querySelector(`+jsString(card+" .result")+`).textContent`); !strings.Contains(msg, "approve") {
		t.Fatalf("after approving the card says %q", msg)
	}
	r := p.wait(t, ctx, id, true, "deployed", "failed")
	if r.Status != "deployed" || !slices.ContainsFunc(r.Stages, func(s apiclient.Stage) bool {
		return s.Stage == 6 && s.Outcome == "approved"
	}) {
		t.Fatalf("after the console's approval: %s %v; want deployed, stage 6 approved", r.Status, outcomes(r))
	}
	gov.waitFor("the card to leave the list", `document.querySelector(`+jsString(card)+`) === null`, 10*time.Second)

	fmt.Fprintf(os.Stderr, "console: first load %.1f KB in %d responses, sign-in usable after %s; signed-in reload %.1f KB in %d responses, first list after %s\n",
		firstBytes/1024, firstRequests, usable.Round(time.Millisecond), reloadBytes/1024, reloadRequests, listed.Round(time.Millisecond))
	fmt.Fprintf(os.Stderr, "console: new approval listed by the API %s after the request, on the page %s after (%s later)\n",
		inAPI.Round(time.Millisecond), onPage.Round(time.Millisecond), (onPage - inAPI).Round(time.Millisecond))
}

// consoleVeto is the veto window testConsoleVetoWindow leaves open for testConsoleVeto.
var consoleVeto struct {
	p  *party
	id string
	r  apiclient.Request
}

// testConsoleVetoWindow opens a seed request's veto window while seed GEN-004 still
// auto-approves (before the restart scenario's veto flags it); testConsoleVeto vetoes it
// after, at hour 23 of its window.
func testConsoleVetoWindow(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	p := newParty(t, ctx)
	id, r := p.vetoWindow(t, ctx)
	consoleVeto.p, consoleVeto.id, consoleVeto.r = &p, id, r
}

// testConsoleVeto: in the open veto window the Governor presses Veto, gives a reason and
// confirms; the timeline shows the undo steps 7, 5, 4, 3 as they complete and the chain
// verified.
func testConsoleVeto(t *testing.T) {
	if consoleVeto.p == nil {
		t.Fatal("no veto window was left open by the scenario before")
	}
	ctx := ctxFor(t, 3*time.Minute)
	p, id, r := consoleVeto.p, consoleVeto.id, consoleVeto.r
	p.refresh(t)
	if got, err := p.mgr.Get(ctx, id); err != nil || got.Status != "veto_window" {
		t.Fatalf("the console's request: %+v %v; want still in its veto window", got, err)
	}
	gov := newTab(t, ctx)
	gov.signIn("governor", "gov-"+p.eng, p.eng)
	gov.open("#vetoes")
	card := cardOf(id)
	gov.waitFor("the veto window's card", `document.querySelector(`+jsString(card)+`) !== null`, 10*time.Second)
	text := eval[string](gov, `document.querySelector(`+jsString(card)+`).textContent`)
	if !strings.Contains(text, "seed "+r.Approval.SeedID) || !strings.Contains(text, "left") {
		t.Fatalf("the veto window's card says %q; want the seed %s cited and the time left", text, r.Approval.SeedID)
	}
	if n := eval[int](gov, `document.querySelectorAll(`+jsString(card+" .approve:not([hidden]), "+card+" .deny:not([hidden])")+`).length`); n != 0 {
		t.Fatalf("a veto window offers %d approve/deny buttons; want only Veto", n)
	}
	// Veto asks for a reason first, then a confirmation.
	gov.do("veto without a reason", chromedp.Click(chromedp.CSS(card+" .veto")))
	if msg := eval[string](gov, `document.querySelector(`+jsString(card+" .result")+`).textContent`); msg != "A veto needs a reason." {
		t.Fatalf("a veto without a reason says %q", msg)
	}
	gov.do("veto with a reason", chromedp.SetValue(chromedp.CSS(card+" .reason"), "the clinic's answers were never reviewed by a clinician"),
		chromedp.Click(chromedp.CSS(card+" .veto")))
	gov.waitFor("the confirmation", `!document.querySelector(`+jsString(card+" .confirm")+`).hidden`, 5*time.Second)
	gov.screenshot("vetoes")
	// No clock to move: the restart scenario's veto moved it to hour 23 of this window too.
	gov.do("confirm the veto", chromedp.Click(chromedp.CSS(card+" .confirm-yes")))

	// The timeline: the undo steps as they complete, then the chain verified.
	gov.waitFor("the timeline", `location.hash === `+jsString("#request/"+id)+` && !document.getElementById("request-view").hidden`, 20*time.Second)
	gov.waitFor("the four undo steps", `document.querySelectorAll("#compensations li[data-stage]").length === 4`, 60*time.Second)
	order := eval[[]int](gov, `[...document.querySelectorAll("#compensations li[data-stage]")].map(li => +li.dataset.stage)`)
	if !slices.Equal(order, []int{7, 5, 4, 3}) {
		t.Fatalf("the timeline shows undo steps %v; want 7, 5, 4, 3", order)
	}
	gov.waitFor("every undo in the audit entries and the chain verified", `["undo_stage_7_deploy", "undo_stage_5_ethics_review", "undo_stage_4_architecture_review", "undo_stage_3_genesis_certification"]
		.every(a => document.querySelector("#entries tr[data-action=" + JSON.stringify(a) + "]") !== null) &&
		document.getElementById("chain").textContent.startsWith("chain verified")`, 60*time.Second)
	chain := eval[string](gov, `document.getElementById("chain").textContent`)
	var seq int64
	if _, err := fmt.Sscanf(chain, "chain verified to seq %d", &seq); err != nil {
		t.Fatalf("the timeline says %q; want chain verified to seq N", chain)
	}
	rep, err := p.gov.Verify(ctx, p.eng)
	if err != nil || !rep.OK || seq < 1 || seq > rep.Entries {
		t.Fatalf("the timeline says verified to seq %d; the API's report %+v %v", seq, rep, err)
	}
	if status := eval[string](gov, `document.getElementById("request-summary").textContent`); !strings.Contains(status, "vetoed") {
		t.Fatalf("the timeline's summary %q; want vetoed", status)
	}
	if six := eval[string](gov, `[...document.querySelectorAll("#stages li[data-stage='6']")].map(li => li.textContent).join(" | ")`); !strings.Contains(six, "vetoed") {
		t.Fatalf("stage 6 on the timeline: %q; want vetoed", six)
	}
	gov.screenshot("timeline")
}
