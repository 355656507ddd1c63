package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/directord/directord/internal/control"
	"github.com/directord/directord/ipvs"
)

// statusTimeout bounds how long status waits for the kernel, so a wedged
// netlink socket never hangs an operator's terminal.
const statusTimeout = 10 * time.Second

func runStatus(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("status", "[-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort] [--save] [-o text|json] [--socket PATH] [--kernel]", stderr)
	fs.Bool("n", true, "numeric output (always on; accepted for ipvsadm compatibility)")
	stats := fs.Bool("stats", false, "show counters, as ipvsadm -Ln --stats")
	rate := fs.Bool("rate", false, "show rates, as ipvsadm -Ln --rate")
	thresholds := fs.Bool("thresholds", false, "show upper and lower connection thresholds, as ipvsadm -Ln --thresholds")
	persistent := fs.Bool("persistent-conn", false, "show persistent connections, as ipvsadm -Ln --persistent-conn")
	exact := fs.Bool("exact", false, "print counters and rates in full, without K/M/G suffixes")
	nosort := fs.Bool("nosort", false, "keep the kernel's order instead of sorting services and destinations")
	save := fs.Bool("save", false, "print the table in ipvsadm's save format (ipvsadm -S -n), which ipvsadm -R reads back")
	output := fs.String("o", "text", "output format: text or json")
	socket := socketFlag(fs.String)
	kernelOnly := fs.Bool("kernel", false, "print only the kernel's table, as ipvsadm -Ln does, even when a daemon runs")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "Usage: directord status [-n] [--stats|--rate|--thresholds|--persistent-conn] [--exact] [--nosort] [--save] [-o text|json] [--socket PATH] [--kernel]")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "With no daemon running, print the kernel's IPVS table exactly as ipvsadm -Ln does.")
		fmt.Fprintln(w, "With a daemon, print its HA state (node, peer, links, ping nodes, resource groups,")
		fmt.Fprintln(w, "sync daemon, watchdog) and then the table in ipvsadm's layout with each real")
		fmt.Fprintln(w, "server's check state. --save and --kernel always print the kernel's table alone.")
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Options:")
		printOptions(fs)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Exit status: 0 success, 1 failure, 2 usage error.")
	}
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord status: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	if *output != "text" && *output != "json" {
		fmt.Fprintf(stderr, "directord status: -o %q: expected text or json\n", *output)
		return exitUsage
	}

	// Same precedence as ipvsadm when several listing options are given.
	opts := ipvs.ListOptions{Exact: *exact, NoSort: *nosort}
	switch {
	case *stats:
		opts.Format = ipvs.ListStats
	case *rate:
		opts.Format = ipvs.ListRate
	case *thresholds:
		opts.Format = ipvs.ListThresholds
	case *persistent:
		opts.Format = ipvs.ListPersistentConn
	}

	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	if !*kernelOnly && !*save {
		st, err := daemonStatus(ctx, *socket)
		switch {
		case err == nil:
			if *output == "json" {
				err = writeDaemonJSON(stdout, st)
			} else {
				err = writeDaemonStatus(stdout, st, opts, time.Now())
			}
			if err != nil {
				fmt.Fprintf(stderr, "directord status: %v\n", err)
				return exitFailure
			}
			return exitOK
		case !errors.Is(err, control.ErrNoDaemon):
			// A daemon that exists but cannot be asked (permissions, a
			// wedged daemon) is reported: falling back to the kernel
			// would hide it.
			fmt.Fprintf(stderr, "directord status: %v\n", err)
			return exitFailure
		}
	}
	info, table, err := readKernel(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "directord status: %v\n", err)
		return exitFailure
	}

	switch {
	case *output == "json":
		err = writeStatusJSON(stdout, info, table)
	case *save:
		err = ipvs.WriteSave(stdout, table)
	default:
		err = ipvs.WriteList(stdout, info, table, opts)
	}
	if err != nil {
		fmt.Fprintf(stderr, "directord status: %v\n", err)
		return exitFailure
	}
	return exitOK
}

func readKernel(ctx context.Context) (ipvs.Info, ipvs.Table, error) {
	h, err := ipvs.Open()
	if err != nil {
		return ipvs.Info{}, nil, err
	}
	defer h.Close()
	info, err := h.Info(ctx)
	if err != nil {
		return ipvs.Info{}, nil, err
	}
	table, err := h.Table(ctx)
	if err != nil {
		return ipvs.Info{}, nil, err
	}
	return info, table, nil
}

// The JSON form is for scripts: stable lower-case names, numbers unabbreviated.
type jsonStatus struct {
	IPVS jsonIPVS `json:"ipvs"`
}

type jsonIPVS struct {
	Version       string        `json:"version"`
	ConnTableSize uint32        `json:"conn_table_size"`
	Services      []jsonService `json:"services"`
}

type jsonService struct {
	Protocol     string            `json:"protocol,omitempty"`
	Family       string            `json:"family"`
	Address      string            `json:"address,omitempty"`
	Port         uint16            `json:"port,omitempty"`
	FWMark       uint32            `json:"fwmark,omitempty"`
	Scheduler    string            `json:"scheduler"`
	Flags        uint32            `json:"flags"`
	Persistent   bool              `json:"persistent"`
	Timeout      uint32            `json:"timeout,omitempty"`
	Netmask      uint32            `json:"netmask"`
	PE           string            `json:"pe,omitempty"`
	Stats        ipvs.Stats        `json:"stats"`
	Rates        ipvs.Rates        `json:"rates"`
	Destinations []jsonDestination `json:"destinations"`
}

type jsonDestination struct {
	Address        string     `json:"address"`
	Port           uint16     `json:"port"`
	Forward        string     `json:"forward"`
	Weight         int32      `json:"weight"`
	UpperThreshold uint32     `json:"upper_threshold"`
	LowerThreshold uint32     `json:"lower_threshold"`
	ActiveConns    uint32     `json:"active_conns"`
	InactConns     uint32     `json:"inact_conns"`
	PersistConns   uint32     `json:"persist_conns"`
	Stats          ipvs.Stats `json:"stats"`
	Rates          ipvs.Rates `json:"rates"`
}

func writeStatusJSON(w io.Writer, info ipvs.Info, table ipvs.Table) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(jsonStatus{IPVS: ipvsJSON(info, table)})
}

func ipvsJSON(info ipvs.Info, table ipvs.Table) jsonIPVS {
	out := struct{ IPVS jsonIPVS }{IPVS: jsonIPVS{
		Version:       info.VersionString(),
		ConnTableSize: info.ConnTableSize,
		Services:      []jsonService{},
	}}
	for _, vs := range table {
		s := vs.Service
		js := jsonService{
			Family:       s.Key().Family.String(),
			FWMark:       s.FWMark,
			Scheduler:    s.Scheduler,
			Flags:        uint32(s.Flags),
			Persistent:   s.Flags&ipvs.FlagPersistent != 0,
			Timeout:      s.Timeout,
			Netmask:      s.Netmask,
			PE:           s.PE,
			Stats:        s.Stats,
			Rates:        s.Rates,
			Destinations: []jsonDestination{},
		}
		if s.FWMark == 0 {
			js.Protocol = s.Protocol.String()
			js.Address = s.Addr.String()
			js.Port = s.Port
		}
		for _, d := range vs.Destinations {
			js.Destinations = append(js.Destinations, jsonDestination{
				Address:        d.Addr.String(),
				Port:           d.Port,
				Forward:        d.Forward.String(),
				Weight:         d.Weight,
				UpperThreshold: d.UpperThreshold,
				LowerThreshold: d.LowerThreshold,
				ActiveConns:    d.ActiveConns,
				InactConns:     d.InactConns,
				PersistConns:   d.PersistConns,
				Stats:          d.Stats,
				Rates:          d.Rates,
			})
		}
		out.IPVS.Services = append(out.IPVS.Services, js)
	}
	return out.IPVS
}
