package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/directord/directord/config"
)

func runImport(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("import", "--ha-dir DIR [-o FILE]", stderr)
	haDir := fs.String("ha-dir", defaultHADir, "the Heartbeat directory `DIR` to read (ha.cf, haresources, authkeys, lnoded.cf)")
	out := fs.String("o", "", "write the YAML to `FILE` (mode 0600: it holds the auth secret) instead of standard output")
	if code := parseFlags(fs, args, stdout); code >= 0 {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "directord import: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}
	// Absolute, so that the lnoded paths in the YAML hold wherever it goes.
	dir, err := filepath.Abs(*haDir)
	if err != nil {
		fmt.Fprintf(stderr, "directord import: %v\n", err)
		return exitFailure
	}
	ctx, cancel := context.WithTimeout(context.Background(), loadTimeout)
	defer cancel()
	// The YAML serves both nodes, so which node runs import does not matter.
	c, err := config.LoadHADir(ctx, dir, &config.Options{AnyNode: true})
	if err != nil {
		return reportLoadError(stderr, "import", err)
	}
	for _, w := range c.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	y, err := config.MarshalYAML(c)
	if err != nil {
		fmt.Fprintf(stderr, "directord import: %v\n", err)
		return exitFailure
	}
	header := fmt.Sprintf("# directord configuration imported from %s by `directord import`.\n# Reference: /usr/share/doc/directord/configuration.md\n", dir)
	y = append([]byte(header), y...)
	if *out == "" {
		if _, err := stdout.Write(y); err != nil {
			fmt.Fprintf(stderr, "directord import: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	if err := writeFileAtomic(*out, y, 0o600); err != nil {
		fmt.Fprintf(stderr, "directord import: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stderr, "directord import: wrote %s; check it with: directord check --config %s\n", *out, *out)
	return exitOK
}

// writeFileAtomic writes data to a temporary file next to path and renames
// it into place, so that a reader never sees half a configuration.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // fails harmlessly after the rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
