package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/session"
)

// metrics are the daemon's Prometheus metrics, in a registry of its own
// (the global default registry is never touched).
type metrics struct {
	reg          *prometheus.Registry
	executions   *prometheus.CounterVec
	wall, cpu    prometheus.Histogram
	memory       prometheus.Histogram
	queueWait    prometheus.Histogram
	pulls        prometheus.Counter
	pullFailures prometheus.Counter
	internal     prometheus.Counter
	rejections   *prometheus.CounterVec
	egress       *prometheus.CounterVec
	egressBytes  *prometheus.CounterVec
}

func newMetrics(s *Server) *metrics {
	const ns = "sandboxd"
	m := &metrics{reg: prometheus.NewRegistry()}
	m.executions = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "executions_total",
		Help: "Executions by language (\"raw\" for image+cmd requests) and status (ok, runtime_error, time_limit, wall_time_limit, memory_limit, output_limit, internal_error)."},
		[]string{"language", "status"})
	seconds := prometheus.ExponentialBuckets(0.005, 2, 14) // 5 ms .. 41 s
	m.wall = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "execution_wall_seconds",
		Help: "Wall-clock time of the program of each run.", Buckets: seconds})
	m.cpu = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "execution_cpu_seconds",
		Help: "CPU time of all tasks of each run.", Buckets: seconds})
	m.memory = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "execution_memory_peak_bytes",
		Help: "Memory peak of each run.", Buckets: prometheus.ExponentialBuckets(1<<20, 2, 12)}) // 1 MiB .. 2 GiB
	m.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "queue_wait_seconds",
		Help: "Time each run waited for a sandbox slot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)})
	m.pulls = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "image_pulls_total", Help: "Image pulls requested."})
	m.pullFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "image_pull_failures_total", Help: "Image pulls that failed."})
	m.internal = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "internal_errors_total",
		Help: "Requests answered with 500 internal_error."})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "rejections_total",
		Help: "Requests refused, by reason: auth (401/403), rate (429), busy (503), framing (ambiguous Content-Length or Transfer-Encoding: 400, connection closed)."}, []string{"reason"})
	for _, reason := range []string{"auth", "rate", "busy", "framing"} {
		m.rejections.WithLabelValues(reason)
	}
	m.egress = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "egress_connections_total",
		Help: "Connections through the egress proxy by verdict: allowed, denied_host, denied_address, denied_limit, failed, bad_request."}, []string{"verdict"})
	m.egressBytes = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "egress_bytes_total",
		Help: "Bytes through the egress proxy: in (to sandboxes) and out."}, []string{"direction"})
	for _, d := range []string{"in", "out"} {
		m.egressBytes.WithLabelValues(d)
	}
	m.reg.MustRegister(m.executions, m.wall, m.cpu, m.memory, m.queueWait, m.pulls, m.pullFailures, m.internal, m.rejections, m.egress, m.egressBytes,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "sandboxes_in_flight", Help: "Sandboxes running now."},
			func() float64 { n, _ := s.Queue.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "queue_length", Help: "Requests waiting for a sandbox slot."},
			func() float64 { _, n := s.Queue.Stats(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "warm_sandboxes", Help: "Sandboxes built ahead of time, waiting in the pool."},
			func() float64 {
				if s.Parked != nil {
					return float64(s.Parked())
				}
				return 0
			}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "audit_dropped_total",
			Help: "Audit lines lost: the buffer was full or the write failed."},
			func() float64 { return float64(s.Audit.Dropped()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "session_sandboxes_active", Help: "Session sandboxes alive now."},
			func() float64 { return float64(s.sessionStats().Active) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "session_sandboxes_created_total", Help: "Session sandboxes created."},
			func() float64 { return float64(s.sessionStats().Created) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "session_sandboxes_expired_total",
			Help: "Session sandboxes ended by their TTL or idle timeout."},
			func() float64 { return float64(s.sessionStats().Expired) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "session_sandboxes_deleted_total", Help: "Session sandboxes ended by DELETE."},
			func() float64 { return float64(s.sessionStats().Deleted) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// observeRun records one sandbox run (a request may have several).
func (m *metrics) observeRun(res *api.Result, wait time.Duration) {
	m.wall.Observe(res.WallTimeMS / 1000)
	m.cpu.Observe(res.CPUTimeMS / 1000)
	m.memory.Observe(float64(res.MemoryPeakBytes))
	m.queueWait.Observe(wait.Seconds())
}

// MetricsHandler serves the metrics in the Prometheus text format; the
// daemon also serves it on --metrics-listen.
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil, Registry: s.metrics.reg})
}

// noteError counts a refused or failed request, and records its code for
// the audit line of an execution (x is nil for other requests).
func (s *Server) noteError(x *execRecord, ae *apiError) {
	switch ae.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		s.metrics.rejections.WithLabelValues("auth").Inc()
	case http.StatusTooManyRequests:
		s.metrics.rejections.WithLabelValues("rate").Inc()
	case http.StatusServiceUnavailable:
		s.metrics.rejections.WithLabelValues("busy").Inc()
	case http.StatusInternalServerError:
		s.metrics.internal.Inc()
	}
	if x != nil {
		x.mu.Lock()
		x.errAPI = ae
		x.mu.Unlock()
	}
}

// countPulls counts image pulls and their failures.
func (s *Server) countPulls(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		next(sw, r)
		s.metrics.pulls.Inc()
		if sw.status >= 300 {
			s.metrics.pullFailures.Inc()
		}
	}
}

func (s *Server) sessionStats() session.Stats {
	if s.Sessions == nil {
		return session.Stats{}
	}
	return s.Sessions.Stats()
}
