package httpapi

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// sessionCookie names the operator's session.
const sessionCookie = "console_session"

// sessions are the operators' sessions: random ids kept in memory (a restart logs everyone out).
type sessions struct {
	ttl time.Duration
	mu  sync.Mutex
	ids map[string]time.Time // id → expiry
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, ids: map[string]time.Time{}}
}

// start returns a new session's id.
func (ss *sessions) start(now time.Time) string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	id := hex.EncodeToString(b[:])
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for k, exp := range ss.ids {
		if now.After(exp) {
			delete(ss.ids, k)
		}
	}
	ss.ids[id] = now.Add(ss.ttl)
	return id
}

// valid reports whether id is a live session.
func (ss *sessions) valid(id string, now time.Time) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	exp, ok := ss.ids[id]
	return ok && now.Before(exp)
}

// end forgets session id.
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.ids, id)
}

// isOperator reports whether token is the operator's, in constant time.
func (s *server) isOperator(token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}

// requireOperator lets through the operator: a bearer token, or a session. A page asked for
// without either goes to the login; anything else answers 401. A form posted from another site
// is refused (403) even with the session's cookie.
func (s *server) requireOperator(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := r.Header.Get("Authorization"); auth != "" {
			if token, ok := strings.CutPrefix(auth, "Bearer "); ok && s.isOperator(token) {
				next.ServeHTTP(w, r)
				return
			}
			http.Error(w, "the operator token is wrong", http.StatusUnauthorized)
			return
		}
		c, err := r.Cookie(sessionCookie)
		if err != nil || !s.sessions.valid(c.Value, s.now()) {
			if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/live") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodGet && !sameOrigin(r) {
			http.Error(w, "a form from another site", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether a state-changing request came from the console's own pages: its
// Origin (or, without one, its Referer) names this host.
func sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" {
		from = r.Header.Get("Referer")
	}
	if from == "" {
		return true // a non-browser client: the cookie alone came from a login
	}
	u, err := url.Parse(from)
	return err == nil && u.Host == r.Host
}

// loginPage asks for the operator token.
func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "login", "Log in", "", map[string]string{"Next": localPath(r.URL.Query().Get("next"))})
}

// login checks the token and starts a session.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "a bad form", http.StatusBadRequest)
		return
	}
	next := localPath(r.PostForm.Get("next"))
	if !s.isOperator(strings.TrimSpace(r.PostForm.Get("token"))) {
		s.render(w, r, http.StatusUnauthorized, "login", "Log in", "", map[string]string{"Next": next, "Error": "That is not the operator token (.stack/admin-token)."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: s.sessions.start(s.now()), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(s.sessions.ttl.Seconds())})
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout ends the session.
func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
