package main

import (
	"io"

	"github.com/directord/directord/internal/control"
)

func runTakeover(args []string, stdout, stderr io.Writer) int {
	return runMove(control.CmdTakeover, "Take resource groups over from the peer, as Heartbeat's hb_takeover does.", args, stdout, stderr)
}
