package e2etest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cli returns the directord binary that TestMain built: on the host, or
// carried into the guest.
func cli(t *testing.T) string {
	t.Helper()
	p := os.Getenv(cliEnv)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("no directord binary (%s=%q): %v", cliEnv, p, err)
	}
	return p
}

// TestCommandLine runs `directord lnoded` as an operator does: --check
// with a valid and a broken file, a usage error, then the daemon in the
// director's namespace on seed 003's file: it programs the table, reloads
// on SIGHUP, and on SIGTERM removes its services (cleanstop=yes) and exits 0.
func TestCommandLine(t *testing.T) {
	bin := cli(t)
	b := newBed(t)
	for _, rs := range b.rs {
		rs.startWeb()
		rs.startDNS()
		rs.setTestHTML("ok")
	}
	path := b.writeConfig(seedConfig("no", "yes"))

	exit := func(err error) int {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	}
	out, err := exec.Command(bin, "lnoded", "--config", path, "--check").CombinedOutput()
	if code := exit(err); code != 0 || !strings.Contains(string(out), "3 virtual services, valid") {
		t.Errorf("--check on a valid file: exit %d, %s", code, out)
	}
	broken := b.dir + "/broken.cf"
	os.WriteFile(broken, []byte("virtual=192.0.2.100:80\n\treal=192.0.2.11:80 bogus\n"), 0o644)
	out, err = exec.Command(bin, "lnoded", "--config", broken, "--check").CombinedOutput()
	if code := exit(err); code != 1 || !strings.Contains(string(out), "broken.cf:2: ") {
		t.Errorf("--check on a broken file: exit %d, %s", code, out)
	}
	out, err = exec.Command(bin, "lnoded", "--bogus").CombinedOutput()
	if code := exit(err); code != 2 {
		t.Errorf("an unknown flag: exit %d, %s", code, out)
	}

	ld := b.start(exec.Command(bin, "lnoded", "--config", path))
	ld.waitLog(0, `Starting directord lnoded .* with pid: `, 5*time.Second)
	b.waitFor(web, line(web, "192.0.2.11:80 w1", "192.0.2.12:80 w1"), 5*time.Second)
	b.waitFor(dnsUDP, line(dnsUDP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), 5*time.Second)
	b.waitFor(dnsTCP, line(dnsTCP, "192.0.2.11:53 w1", "192.0.2.12:53 w1"), 5*time.Second)
	ld.waitLog(0, `msg="Added real server: 192.0.2.11:80 \(192.0.2.100:80\) \(Weight set to 1\)" ipvsadm="-a -t 192.0.2.100:80 -r 192.0.2.11:80 -g -w 1 -x 0 -y 0"`, time.Second)

	mark := ld.mark()
	ld.signal(syscall.SIGHUP)
	ld.waitLog(mark, `Reloading lnoded config on signal`, 5*time.Second)

	mark = ld.mark()
	if err := ld.stop(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	ld.waitLog(mark, `lnoded terminated on signal: TERM`, time.Second)
	if code := ld.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit status after SIGTERM: %d", code)
	}
	if tab := b.table(); tab != "" {
		t.Errorf("after SIGTERM with cleanstop=yes:\n%s", tab)
	}
}
