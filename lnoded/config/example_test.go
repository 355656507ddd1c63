package config_test

import (
	"context"
	"fmt"

	"github.com/directord/directord/lnoded/config"
)

// The lnoded.cf of the LVS-DR walk-through: every default comes resolved.
func ExampleParse() {
	src := `quiescent=yes
virtual=192.0.2.101:80
	real=192.0.2.200:80 gate
	real=192.0.2.201:80 gate 2
	service=http
	request=".test.html"
	receive="ok"
	virtualhost=www.a.com
	scheduler=rr
`
	cfg, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	v := cfg.Virtuals[0]
	fmt.Println(v.Protocol, v.Addr, v.Port, v.Scheduler, v.CheckType, v.Service, v.Quiescent)
	fmt.Println(v.CheckInterval, v.CheckTimeout, v.NegotiateTimeout, v.FailureCount)
	for _, r := range v.Reals {
		fmt.Println(r.Addr, r.Method, r.Weight, r.URL, r.Receive)
	}
	// Output:
	// tcp 192.0.2.101 80 rr negotiate http true
	// 10s 5s 30s 1
	// 192.0.2.200 gate 1 http://192.0.2.200:80/.test.html ok
	// 192.0.2.201 gate 2 http://192.0.2.201:80/.test.html ok
}

// Every error in the file is reported, each with its line.
func ExampleParse_errors() {
	src := `quiescent=maybe
virtual=192.0.2.10:80
    real=192.0.2.20:80 route
    checkport=0
`
	_, err := config.Parse(context.Background(), "lnoded.cf", []byte(src), nil)
	fmt.Println(err)
	// Output:
	// lnoded.cf:1: quiescent: expected yes or no, got "maybe"
	// lnoded.cf:3: real: forwarding method must be gate, masq or ipip, got "route"
	// lnoded.cf:4: checkport: expected a port from 1 to 65535, got "0"
}
