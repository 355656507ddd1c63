// Command mkdeb builds directord's Debian package: the static binary, the
// systemd units, the example configurations and the documentation, with a
// control file, conffiles and maintainer scripts that never start or enable
// the service on install.
//
//	go run ./deploy/mkdeb -o dist/ [-version 0.1.0] [-arch amd64] [-binary PATH]
//
// It runs from the repository root. Without -binary it builds the binary
// with `go build` (CGO_ENABLED=0, -trimpath). The .deb is written without
// external tools: an ar archive of debian-binary, control.tar.gz and
// data.tar.gz, made with archive/tar and compress/gzip (goreleaser's nfpm
// cannot be used here: the module proxy refuses its dependencies). File
// times are SOURCE_DATE_EPOCH when set, so that builds are reproducible.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("mkdeb", flag.ContinueOnError)
	out := fs.String("o", "dist", "directory the .deb is written to")
	version := fs.String("version", "0.1.0~dev", "package version (Debian syntax; starts with a digit)")
	arch := fs.String("arch", runtime.GOARCH, "Go architecture to build for")
	binary := fs.String("binary", "", "use this directord binary instead of building one")
	root := fs.String("root", ".", "the repository root")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mkdeb: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	path, err := build(*root, *out, *version, *arch, *binary)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mkdeb: %v\n", err)
		return 1
	}
	fmt.Println(path)
	return 0
}

// build makes the package and returns the path of the .deb.
func build(root, outDir, version, goarch, binary string) (string, error) {
	debArch, err := debianArch(goarch)
	if err != nil {
		return "", err
	}
	if err := checkVersion(version); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("%s is not the repository root (no go.mod): %w", root, err)
	}
	mtime, err := buildTime()
	if err != nil {
		return "", err
	}
	if binary == "" {
		tmp, err := os.MkdirTemp("", "mkdeb-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		binary = filepath.Join(tmp, "directord")
		// A static position-independent executable with a read-only
		// relocation table: what Debian's hardening expects of a binary.
		cmd := exec.Command("go", "build", "-trimpath", "-buildmode=pie", "-ldflags", "-s -w -linkmode=internal -X main.version="+version, "-o", binary, "./cmd/directord")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("go build: %w", err)
		}
	}
	pkg := &pkg{version: version, arch: debArch, mtime: mtime}
	if err := pkg.collect(root, binary); err != nil {
		return "", err
	}
	deb, err := pkg.deb()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(outDir, fmt.Sprintf("directord_%s_%s.deb", version, debArch))
	if err := os.WriteFile(path, deb, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// buildTime is SOURCE_DATE_EPOCH (reproducible builds), else now.
func buildTime() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", s)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	return time.Now().UTC().Truncate(time.Second), nil
}

// debianArch maps a Go architecture to Debian's name for it.
func debianArch(goarch string) (string, error) {
	switch goarch {
	case "amd64", "arm64", "riscv64", "s390x", "mips64le":
		return goarch, nil
	case "386":
		return "i386", nil
	case "arm":
		return "armhf", nil
	case "ppc64le":
		return "ppc64el", nil
	case "loong64":
		return "loong64", nil
	}
	return "", fmt.Errorf("no Debian architecture for GOARCH %q", goarch)
}

// checkVersion applies deb-version(7)'s rules that matter here: it starts
// with a digit and holds only alphanumerics and . + ~ - (and : for an epoch).
func checkVersion(v string) error {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return fmt.Errorf("version %q must start with a digit", v)
	}
	for _, c := range v {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '.', c == '+', c == '~', c == '-', c == ':':
		default:
			return fmt.Errorf("version %q: %q is not allowed", v, c)
		}
	}
	return nil
}
