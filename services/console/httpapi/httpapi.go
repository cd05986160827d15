// Package httpapi serves the console over HTTP (chi): server-rendered pages (html/template,
// embedded) for the sagas, one saga, the dead letters and the pipeline's health, live updates
// of one saga and of the health over Server-Sent Events, the operator's login (a session cookie)
// and the two actions the console may take: replaying dead letters and restarting a connector.
// Every page reads without JavaScript; the embedded script only swaps in the live fragments.
package httpapi

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"outboxsaga.dev/console"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Services is the services' HTTP APIs, as the operator; *services.Client implements it.
type Services interface {
	Sagas(ctx context.Context, f console.SagaFilter) (console.SagaPage, error)
	Order(ctx context.Context, id string) (console.Order, error)
	Events(ctx context.Context, id string) ([]console.Event, error)
	Delivery(ctx context.Context, id string) (console.Delivery, error)
	Notifications(ctx context.Context, id string) ([]console.Notification, error)
	Watch(ctx context.Context, id string, changed func()) error
	DeadLetters(ctx context.Context, limit int) ([]console.DeadLetter, map[string]error)
	Replay(ctx context.Context, ref string) console.ReplayOutcome
	Services() []string
}

// Connect is Kafka Connect's REST API; *connect.Client implements it.
type Connect interface {
	Connectors(ctx context.Context) ([]console.Connector, error)
	Restart(ctx context.Context, name string) error
}

// Config is what the console's routes are built from.
type Config struct {
	Services Services
	Connect  Connect
	// Health is the pipeline's latest state (a Monitor).
	Health interface{ Snapshot() console.Health }
	// AdminToken is the operator token: the login asks for it, and a request that sends it as
	// Authorization: Bearer needs no session.
	AdminToken string
	// StuckAfter: a PENDING saga older than this is stuck (shown on top of the list).
	StuckAfter time.Duration
	Thresholds console.Thresholds
	// LiveInterval is how often a live page looks for changes (default 1s).
	LiveInterval time.Duration
	Log          zerolog.Logger
	// Registry takes the console's metrics (served at /metrics with the Go runtime's); nil: a
	// fresh one.
	Registry *prometheus.Registry
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// server holds the pages and what they read.
type server struct {
	cfg      Config
	actions  *prometheus.CounterVec
	pages    map[string]*template.Template
	sessions *sessions
	now      func() time.Time
}

// pageNames are the templates that are whole pages (each with layout.html).
var pageNames = []string{"login", "sagas", "saga", "deadletters", "health", "error"}

// Handler returns the console's HTTP handler.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.AdminToken == "" {
		return nil, errors.New("the console needs the operator token (CONSOLE_ADMIN_TOKEN or ADMIN_TOKEN)")
	}
	if cfg.LiveInterval <= 0 {
		cfg.LiveInterval = time.Second
	}
	if cfg.Thresholds == (console.Thresholds{}) {
		cfg.Thresholds = console.DefaultThresholds
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	s := &server{cfg: cfg, pages: map[string]*template.Template{}, sessions: newSessions(12 * time.Hour), now: cfg.Now}
	if s.now == nil {
		s.now = time.Now
	}
	s.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "console_actions_total",
		Help: "What operators did through the console: dead-letter replays and connector restarts, by outcome."}, []string{"action", "outcome"})
	if err := cfg.Registry.Register(s.actions); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html", "templates/fragments.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse page %s: %w", name, err)
		}
		s.pages[name] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("static files: %w", err)
	}

	r := chi.NewRouter()
	r.Use(middleware.Recoverer, secureHeaders)
	r.Handle("/static/*", http.StripPrefix("/static/", cacheFor(http.FileServerFS(static))))
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	r.Handle("/metrics", promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}))
	r.Get("/login", s.loginPage)
	r.Post("/login", s.login)
	r.Group(func(r chi.Router) {
		r.Use(s.requireOperator)
		r.Post("/logout", s.logout)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/sagas", http.StatusSeeOther) })
		r.Get("/sagas", s.sagasPage)
		r.Get("/sagas/live", s.sagasLive)
		r.Get("/sagas/{id}", s.sagaPage)
		r.Get("/sagas/{id}/live", s.sagaLive)
		r.Get("/dead-letters", s.deadLettersPage)
		r.Post("/dead-letters/replay", s.replay)
		r.Get("/health", s.healthPage)
		r.Get("/health/live", s.healthLive)
		r.Post("/health/connectors/{name}/restart", s.restart)
	})
	return r, nil
}

// secureHeaders forbids framing, sniffing and anything loaded from elsewhere.
func secureHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

// cacheFor lets the browser keep the static files for an hour.
func cacheFor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// funcs are the templates' helpers: times, durations and sizes for people.
func (s *server) funcs() template.FuncMap {
	return template.FuncMap{
		"ago":     func(t time.Time) string { return console.Ago(t, s.now()) },
		"dur":     console.Duration,
		"bytes":   console.Bytes,
		"spark":   console.Sparkline,
		"trend":   console.Direction,
		"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") },
		"short":   func(id string) string { return shortID(id) },
		"money":   money,
		"lower":   strings.ToLower,
		"deref":   func(p *string) string { return deref(p) },
		"firstln": func(s string) string { l, _, _ := strings.Cut(strings.TrimSpace(s), "\n"); return l },
		"since":   func(t time.Time) string { return console.Duration(s.now().Sub(t)) },
		"add":     func(a, b int) int { return a + b },
		"clip":    func(s string) string { return clip(s, 200) },
		"clip40":  func(s string) string { return clip(s, 40) },
	}
}

// clip cuts s to most characters (a key or an error may quote a record of a megabyte).
func clip(s string, most int) string {
	if len(s) <= most {
		return s
	}
	r := []rune(s)
	if len(r) <= most {
		return s
	}
	return string(r[:most]) + fmt.Sprintf("… (%d characters more)", len(r)-most)
}

// shortID is an id's first 8 characters.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// money writes an amount in minor units with thousands separators: 39,000 KRW.
func money(amount int64, currency string) string {
	s := strconv.FormatInt(amount, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	out := b.String()
	if neg {
		out = "-" + out
	}
	return out + " " + currency
}

// page is what every page template gets.
type page struct {
	Title string
	// Nav is the section the page belongs to (sagas, dead-letters, health).
	Nav  string
	Now  time.Time
	Data any
}

// render writes page name with data.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name, title, nav string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := s.pages[name].ExecuteTemplate(w, "layout", page{Title: title, Nav: nav, Now: s.now(), Data: data}); err != nil {
		s.cfg.Log.Error().Err(err).Str("page", name).Msg("render page")
	}
}

// fail answers an error page saying what went wrong.
func (s *server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.render(w, r, status, "error", "Error", "", msg)
}

// localPath is next if it is a path of this site ("/..."), else "/sagas".
func localPath(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/sagas"
	}
	return next
}
