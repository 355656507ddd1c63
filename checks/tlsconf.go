package checks

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// tlsConfig is the client TLS configuration of the https, pops and imaps
// checks. ldirectord's https check (LWP with verify_hostname => 0 over
// IO::Socket::SSL's defaults) verifies the server's certificate chain
// against the system's trusted roots but not the name in it, so a real
// server with a self-signed or expired certificate is down; checked on
// Debian 12, where it reports "certificate verify failed". This does the
// same, with roots (nil: the system's) as the trust anchors, or verifies
// nothing when insecure is set. No SNI is sent for an IP address.
func tlsConfig(roots *x509.CertPool, insecure bool) *tls.Config {
	cfg := &tls.Config{
		// The name is never checked: the check reaches the real server by
		// address while its certificate names the virtual service.
		InsecureSkipVerify: true, //nolint:gosec // chain checked below
	}
	if insecure {
		return cfg
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tls: no server certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
		if err != nil {
			return fmt.Errorf("certificate verify failed: %w", err)
		}
		return nil
	}
	return cfg
}

// tlsFor is the TLS configuration of a line-protocol check: nil for plain
// text.
func tlsFor(cfg Config, useTLS bool) *tls.Config {
	if !useTLS {
		return nil
	}
	return tlsConfig(cfg.TLSRoots, cfg.InsecureTLS)
}
