package httpapi

import (
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"
)

// MountPprof adds Go's runtime profiles (net/http/pprof) under /debug/pprof/, behind the admin
// token like every operator endpoint (RequireAdmin): a profile shows the code's paths, a
// goroutine dump the arguments on its stacks. What is there: the index, /debug/pprof/profile (CPU,
// ?seconds=N; the server's write timeout is lifted for the duration), /trace, /symbol, /cmdline
// and every named profile (/heap, /goroutine, /allocs, /block, /mutex, /threadcreate). make bench
// takes the services' CPU profiles through it (BENCH_PROFILE=1, docs/bench/README.md):
//
//	curl -H "Authorization: Bearer $(cat .stack/admin-token)" -o cpu.pb.gz \
//	  "$ORDER_URL/debug/pprof/profile?seconds=30"  # ORDER_URL: the order service's address (scripts/lib.sh)
func MountPprof(r chi.Router, adminToken string, log zerolog.Logger) {
	r.Route("/debug/pprof", func(r chi.Router) {
		r.Use(RequireAdmin(adminToken, log))
		r.Get("/cmdline", pprof.Cmdline)
		r.Get("/profile", pprof.Profile)
		r.Get("/trace", pprof.Trace)
		r.HandleFunc("/symbol", pprof.Symbol) // GET and POST
		// pprof.Index serves the index at /debug/pprof/ and a named profile at /debug/pprof/<name>.
		r.Get("/", pprof.Index)
		r.Get("/{profile}", pprof.Index)
	})
}
