// A peer for bench/run: the fleet's metric families, names and label sets, served by
// client_golang (promhttp, gzip on Accept-Encoding as it does by default) for N servers
// with random values.
//
// Per server: app_server_up, 4 gauges, app_requests_total{status} x3, the
// app_request_duration_seconds histogram (11 buckets, +Inf, _sum, _count), the two network
// counters and app_last_deploy_timestamp_seconds: 25 series, as fleetsim serves for a
// server that is up. The default registry's go_* and process_* collectors stay on, as
// fleetsim serves its own process_* series.
//
// -tick refreshes every value that often from a goroutine (as fleetsim's 1 s tick does);
// 0 sets them once at start and never again.
//
// Builds offline against Debian's packages (golang-go,
// golang-github-prometheus-client-golang-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o go_exporter .
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	roles   = []string{"web", "api", "db", "cache", "worker"}
	dcs     = []string{"dc1", "dc2", "dc3"}
	labels  = []string{"server", "dc", "role"}
)

type server struct {
	up       prometheus.Gauge
	gauges   []prometheus.Gauge
	requests []prometheus.Counter
	duration prometheus.Observer
	rx, tx   prometheus.Counter
	deploy   prometheus.Gauge
}

func main() {
	servers := flag.Int("servers", 10, "servers to simulate")
	listen := flag.String("listen", "127.0.0.1:8000", "address to serve /metrics on")
	tick := flag.Duration("tick", time.Second, "how often every value is refreshed; 0: never")
	seed := flag.Int64("seed", 1, "seed of the random values")
	flag.Parse()
	rng := rand.New(rand.NewSource(*seed))

	gaugeVec := func(name, help string) *prometheus.GaugeVec {
		return promauto(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)).(*prometheus.GaugeVec)
	}
	counterVec := func(name, help string, l []string) *prometheus.CounterVec {
		return promauto(prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, l)).(*prometheus.CounterVec)
	}
	up := gaugeVec("app_server_up", "Whether the server is up: 1 up, 0 down.")
	gauges := []*prometheus.GaugeVec{
		gaugeVec("app_cpu_usage", "CPU used, percent (0 to 100)."),
		gaugeVec("app_memory_usage", "Memory used, percent (0 to 100)."),
		gaugeVec("app_disk_usage", "Disk space used, percent (0 to 100)."),
		gaugeVec("app_requests_per_second", "Requests served, per second."),
	}
	requests := counterVec("app_requests_total", "Requests served, by status class (count).",
		append(append([]string{}, labels...), "status"))
	duration := promauto(prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "app_request_duration_seconds", Help: "Request duration, seconds.", Buckets: buckets,
	}, labels)).(*prometheus.HistogramVec)
	rx := counterVec("app_network_receive_bytes_total", "Network bytes received (bytes).", labels)
	tx := counterVec("app_network_transmit_bytes_total", "Network bytes sent (bytes).", labels)
	deploy := gaugeVec("app_last_deploy_timestamp_seconds",
		"Unix time of the last deploy of the server's role, seconds.")

	width := len(strconv.Itoa(*servers))
	if width < 2 {
		width = 2
	}
	fleet := make([]server, *servers)
	for i := range fleet {
		lv := []string{fmt.Sprintf("srv-%0*d", width, i+1), dcs[i%len(dcs)], roles[i%len(roles)]}
		s := &fleet[i]
		s.up = up.WithLabelValues(lv...)
		for _, g := range gauges {
			s.gauges = append(s.gauges, g.WithLabelValues(lv...))
		}
		for _, st := range []string{"2xx", "4xx", "5xx"} {
			s.requests = append(s.requests, requests.WithLabelValues(append(append([]string{}, lv...), st)...))
		}
		s.duration = duration.WithLabelValues(lv...)
		s.rx = rx.WithLabelValues(lv...)
		s.tx = tx.WithLabelValues(lv...)
		s.deploy = deploy.WithLabelValues(lv...)
	}
	refresh := func() {
		now := float64(time.Now().UnixNano()) / 1e9
		for i := range fleet {
			s := &fleet[i]
			s.up.Set(1)
			for _, g := range s.gauges {
				g.Set(rng.Float64() * 100)
			}
			for _, c := range s.requests {
				c.Add(rng.Float64() * 1000)
			}
			s.duration.Observe(math.Exp(rng.NormFloat64() - 3))
			s.rx.Add(rng.Float64() * 1e6)
			s.tx.Add(rng.Float64() * 1e6)
			s.deploy.Set(now - rng.Float64()*86400)
		}
	}
	refresh()
	if *tick > 0 {
		go func() {
			for range time.Tick(*tick) {
				refresh()
			}
		}()
	}

	http.Handle("/metrics", promhttp.Handler())
	srv := &http.Server{Addr: *listen}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	fmt.Fprintf(os.Stderr, "go peer: %d servers on %s\n", *servers, *listen)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = srv.Close()
}

// promauto registers c with the default registry (whose go_* and process_* collectors
// stay on) and returns it.
func promauto(c prometheus.Collector) prometheus.Collector {
	prometheus.MustRegister(c)
	return c
}
