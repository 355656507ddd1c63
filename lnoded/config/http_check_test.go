package config

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
)

// TestLdirectordChecksTheSameURL lets ldirectord run its HTTP checks against
// a server on the loopback address and checks that the request it sends is
// the one the lnoded model describes: the method, the path of Real.URL, the
// port of Real.CheckPort and the Host header (Virtual.VirtualHost, else the
// real server's address). The IPVS side goes to the fake ipvsadm.
func TestLdirectordChecksTheSameURL(t *testing.T) {
	if _, err := os.Stat(ldirectordPath); err != nil {
		t.Skipf("%s is absent (apt-get install ldirectord): the HTTP check comparison did not run", ldirectordPath)
	}
	if testing.Short() {
		t.Skip("starts ldirectord; skipped in -short mode")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ method, path, host, port string }
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, _ := net.SplitHostPort(r.Context().Value(http.LocalAddrContextKey).(net.Addr).String())
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.RequestURI(), r.Host, port})
		mu.Unlock()
		fmt.Fprintln(w, "alive and ok")
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	tests := []struct {
		name string
		body string // the block's lines after virtual=; PORT is the server's port
	}{
		{"defaults", "    real=127.0.0.1:PORT gate\n"},
		{"request-host", "    real=127.0.0.1:PORT gate\n    request=\"status.html\"\n    receive=\"ok\"\n    virtualhost=\"www.example.com\"\n"},
		// A HEAD response has no body, so no receive string here.
		{"head", "    real=127.0.0.1:PORT gate\n    request=\"/h\"\n    httpmethod=head\n"},
		{"per-real", "    real=127.0.0.1:PORT gate 2 \"per/real?x=1\", \"alive\"\n    request=\"/virtual\"\n"},
		// ldirectord ignores the pair's receive (and the URL) when the
		// request starts with "/".
		{"per-real-slash", "    real=127.0.0.1:PORT gate 3 \"/per/real\", \"nowhere\" l:5\n    request=\"/virtual\"\n"},
		{"absolute-per-real", "    real=127.0.0.1:81 gate \"http://127.0.0.1:PORT/abs\", \"ok\"\n    service=http\n"},
		{"checkport", "    real=127.0.0.1:81 masq\n    checkport=PORT\n    service=http\n    virtualhost=vh\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			src := "checkinterval=60\nvirtual=127.0.0.2:8080\n" + strings.ReplaceAll(tt.body, "PORT", port) + "    checktype=negotiate\n"
			cfg, err := Parse(context.Background(), "http.cf", []byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Virtuals[0].Service != ServiceNone && cfg.Virtuals[0].Service != ServiceHTTP {
				t.Fatalf("service %v", cfg.Virtuals[0].Service)
			}
			if cfg.Virtuals[0].Service == ServiceNone {
				// Port 8080 guesses no service; these checks need http.
				src += "    service=http\n"
				if cfg, err = Parse(context.Background(), "http.cf", []byte(src), nil); err != nil {
					t.Fatal(err)
				}
			}
			v := cfg.Virtuals[0]
			r := v.Reals[0]
			u, err := url.Parse(r.URL)
			if err != nil {
				t.Fatalf("Real.URL %q: %v", r.URL, err)
			}
			host := v.VirtualHost
			if host == "" {
				host = r.Addr.String()
			}
			want := seen{v.HTTPMethod, u.RequestURI(), host, fmt.Sprint(r.CheckPort)}
			if strings.Contains(r.Request, "://") {
				want.port = u.Port()
			}
			realUp := func(tab *fakeTable) bool {
				svc := tab.Services["127.0.0.2:8080 tcp"]
				return svc != nil && svc.Reals[hostPort(r.Addr, r.Port)] != nil
			}
			tab := runLdirectordStart(t, self, "http.cf", []byte(src), realUp)
			mu.Lock()
			defer mu.Unlock()
			if len(got) == 0 {
				t.Fatalf("ldirectord sent no HTTP request (lnoded expects %+v); its commands:\n%s", want, strings.Join(tab.Log, "\n"))
			}
			if got[0] != want {
				t.Errorf("ldirectord sent %+v, lnoded's model says %+v", got[0], want)
			}
			// The check passed (receive matched), so the real server is in.
			svc := tab.Services["127.0.0.2:8080 tcp"]
			if svc == nil || svc.Reals[hostPort(r.Addr, r.Port)] == nil || svc.Reals[hostPort(r.Addr, r.Port)].Weight != fmt.Sprint(r.Weight) {
				t.Errorf("real server not up with weight %d after a passing check: %+v", r.Weight, svc)
			}
		})
	}
}
