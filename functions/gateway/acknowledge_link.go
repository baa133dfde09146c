package gateway

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"waooaw.dev/governance/shared/auth"
	"waooaw.dev/governance/shared/notification"
)

// LinkActor is who an acknowledgement through a message's link is recorded as: the link
// proves the holder received the Governor's notification, not who they are.
const LinkActor = "link"

// linkCSP: the page is a form and text; it runs nothing and loads nothing.
const linkCSP = "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed acknowledge_link.html
var linkPageSrc string

var linkPage = template.Must(template.New("link").Parse(linkPageSrc))

type linkPageData struct {
	Title, Message, Token, Action, ApprovalID string
}

// writeLinkPage answers the link's page; the token stays out of every other page and out of
// the Referer (no-referrer) so it leaks nowhere.
func writeLinkPage(w http.ResponseWriter, code int, d linkPageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", linkCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = linkPage.Execute(w, d)
}

// wantsHTML: a browser following the link or posting its form asks for a page; an API
// client gets the JSON answer.
func wantsHTML(r *http.Request) bool { return strings.Contains(r.Header.Get("Accept"), "text/html") }

// linkError names what is wrong with a link (a 4xx), or a 503 when its key is unreadable.
func (s *Server) verifyLink(r *http.Request, token string) (notification.Link, *apiError) {
	if token == "" {
		return notification.Link{}, errorf(http.StatusBadRequest, "the link has no token")
	}
	key, err := s.opt.Secrets.Get(r.Context(), notification.LinkKeySecret)
	if err != nil {
		return notification.Link{}, &apiError{code: http.StatusServiceUnavailable, msg: "acknowledge links are unavailable; retry", cause: err}
	}
	l, err := notification.VerifyLink(key, token, s.opt.Now())
	switch {
	case errors.Is(err, notification.ErrLinkExpired):
		return l, errorf(http.StatusGone, "this link expired at %s", l.Expires.Format(time.RFC3339))
	case err != nil:
		return l, errorf(http.StatusForbidden, "this link is not valid: it was not signed by the platform")
	}
	return l, nil
}

// serveLinkPage answers GET of a link: it checks the token and shows a button that posts it.
// It changes nothing, since mail scanners open links to inspect them.
func (s *Server) serveLinkPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	l, aerr := s.verifyLink(r, tok)
	if aerr != nil {
		s.opt.Logger.WarnContext(r.Context(), "gateway request", "method", r.Method, "path", r.URL.Path, "status", aerr.code, "reason", aerr.msg)
		if wantsHTML(r) {
			writeLinkPage(w, aerr.code, linkPageData{Title: "Link refused", Message: aerr.msg})
			return
		}
		writeError(w, aerr)
		return
	}
	writeLinkPage(w, http.StatusOK, linkPageData{Title: "Acknowledge approval " + l.ApprovalID,
		Message: "Press Acknowledge to stop the reminders for this approval.", Token: tok,
		Action: notification.LinkPath, ApprovalID: l.ApprovalID})
}

func linkTarget(*request) (Access, *apiError) {
	return Access{Action: ActionAcknowledge, ResourceType: "approval", Bundles: []string{"rbac"}}, nil
}

type linkRoute struct {
	link  notification.Link
	token string
}

// authenticateLink: the signed token is the credential. It acts as a Governor of the
// approval's engagement for rbac; the governor bundle, which names the person, does not
// apply to a link, whose signature stands for having been sent to the Governor.
func (s *Server) authenticateLink(req *request) *apiError {
	tok := req.PostFormValue("token")
	l, aerr := s.verifyLink(req.Request, tok)
	if aerr != nil {
		return aerr
	}
	req.principal = Principal{Kind: LinkActor, ID: LinkActor, Role: auth.RoleGovernor}
	req.route = linkRoute{link: l, token: tok}
	return nil
}

// resolveLink reads the cascade the link was sent by: an earlier cascade's link is refused.
func (s *Server) resolveLink(req *request, a *Access) *apiError {
	rt := req.route.(linkRoute)
	a.ResourceID = rt.link.ApprovalID
	snap, err := s.opt.Firestore.Collection(notification.Collection).Doc(rt.link.ApprovalID).Get(req.Context())
	switch {
	case status.Code(err) == codes.NotFound:
		return errorf(http.StatusNotFound, "no notifications for approval %q", rt.link.ApprovalID)
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "notification store unavailable; retry", cause: err}
	}
	var c notification.Cascade
	if err := snap.DataTo(&c); err != nil {
		return &apiError{code: http.StatusInternalServerError, msg: "notification record unreadable", cause: err}
	}
	if c.Execution != "" && c.Execution != rt.link.Execution {
		return errorf(http.StatusConflict, "this link belongs to another notification cascade of approval %s", c.ApprovalID)
	}
	a.Engagement = c.EngagementID
	req.principal.Engagement = c.EngagementID
	req.route = linkCascade{linkRoute: rt, cascade: c}
	return nil
}

type linkCascade struct {
	linkRoute
	cascade notification.Cascade
}

// serveLink uses the link once, then acknowledges as the Governor's route does. A delivery
// that failed gives the link back, so the Governor may press again.
func (s *Server) serveLink(w http.ResponseWriter, req *request) error {
	rt := req.route.(linkCascade)
	ref := s.opt.Firestore.Collection(notification.LinksCollection).Doc(notification.LinkDigest(rt.token))
	_, err := ref.Create(req.Context(), map[string]any{"approval_id": rt.link.ApprovalID, "used_at": s.opt.Now().UTC().Format(time.RFC3339Nano)})
	switch {
	case status.Code(err) == codes.AlreadyExists:
		return errorf(http.StatusGone, "this link was already used")
	case err != nil:
		return &apiError{code: http.StatusServiceUnavailable, msg: "notification store unavailable; retry", cause: err}
	}
	ans, aerr := s.acknowledge(req, rt.cascade, LinkActor, func() {
		if _, err := ref.Delete(context.WithoutCancel(req.Context())); err != nil {
			req.log = append(req.log, "link_error", err.Error())
		}
	})
	if aerr != nil {
		return aerr
	}
	writeJSON(w, http.StatusOK, ans)
	return nil
}

// linkHTML renders the JSON answer of the POST as a page for a browser.
func linkHTML(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !wantsHTML(r) {
			next.ServeHTTP(w, r)
			return
		}
		rec := &bufferWriter{header: http.Header{}, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		for k, v := range rec.header {
			if k != "Content-Type" && k != "Content-Length" {
				w.Header()[k] = v
			}
		}
		if rec.code >= 400 {
			var e ErrorBody
			_ = json.Unmarshal(rec.body.Bytes(), &e)
			writeLinkPage(w, rec.code, linkPageData{Title: "Not acknowledged", Message: e.Error.Message})
			return
		}
		var a acknowledged
		_ = json.Unmarshal(rec.body.Bytes(), &a)
		msg := map[string]string{
			"stopped":              "Acknowledged: no more reminders will be sent for approval " + a.ApprovalID + ". It still waits for a decision.",
			"ended":                "Acknowledged: every reminder for approval " + a.ApprovalID + " had already been sent. It still waits for a decision.",
			"already_acknowledged": "Approval " + a.ApprovalID + " was already acknowledged by " + a.AcknowledgedBy + ".",
		}[a.Status]
		writeLinkPage(w, rec.code, linkPageData{Title: "Acknowledged", Message: msg})
	})
}

// bufferWriter keeps an answer to render it differently.
type bufferWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header         { return b.header }
func (b *bufferWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
