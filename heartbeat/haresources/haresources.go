// Package haresources parses Heartbeat's /etc/ha.d/haresources: one
// resource group per line, "node resource resource …", started left to
// right and stopped right to left.
//
// Syntax, as Heartbeat's ResourceManager reads it: '#' starts a comment,
// a line ending in '\' continues on the next (the backslash and newline
// are removed, nothing is inserted), blanks separate words, and the node
// name is lowercased. A resource is "script" or "script::arg1::arg2…";
// a word that looks like an IPv4 address (a digit, then three dots each
// followed by a digit) is short for "IPaddr::word".
package haresources

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Well-known resource scripts.
const (
	IPaddr     = "IPaddr"
	IPaddr2    = "IPaddr2"
	Lnoded     = "lnoded"
	Ldirectord = "ldirectord"
)

// IPAddr is the argument of IPaddr and IPaddr2:
// "ip[/prefix[/interface[/broadcast]]]", where the interface may be left
// out before a broadcast address ("ip/prefix/broadcast").
type IPAddr struct {
	Addr      netip.Addr
	PrefixLen int        // -1 when not given
	Interface string     // "" when not given
	Broadcast netip.Addr // invalid when not given
}

// Resource is one resource of a group.
type Resource struct {
	Word   string   // as written in the file
	Script string   // resource script name
	Args   []string // arguments, split on "::"
	// IP is the parsed address of an IPaddr or IPaddr2 resource.
	IP *IPAddr
}

// String returns the canonical form: "script::arg::arg".
func (r Resource) String() string {
	return strings.Join(append([]string{r.Script}, r.Args...), "::")
}

// Group is one line: the node that normally holds the resources, and the
// resources in start order.
type Group struct {
	Line      int
	Node      string
	Resources []Resource
}

// Key is the group's first resource, which names it in Heartbeat's
// messages and must be unique in the file.
func (g Group) Key() string { return g.Resources[0].Word }

// Config is a parsed haresources file.
type Config struct {
	File   string
	Groups []Group
}

// CheckNodes returns an error naming file:line for the first group whose
// node is not declared; isNode is typically hacf's Config.HasNode.
func (c *Config) CheckNodes(isNode func(string) bool) error {
	for _, g := range c.Groups {
		if !isNode(g.Node) {
			return fmt.Errorf("%s:%d: node %q is not declared with \"node\" in ha.cf", c.File, g.Line, g.Node)
		}
	}
	return nil
}

// Load reads and parses the haresources file at path.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("haresources: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

const (
	maxLine  = 64 * 1024 // one physical line
	maxGroup = 256 * 1024
)

// Parse parses haresources text; name appears in errors as
// "name:line: …", line being where the group starts.
func Parse(r io.Reader, name string) (*Config, error) {
	c := &Config{File: name}
	keys := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	lineno, start := 0, 0
	var logical strings.Builder
	flush := func() error {
		text := logical.String()
		logical.Reset()
		words := strings.Fields(text)
		if len(words) == 0 {
			return nil
		}
		g, err := parseGroup(words)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", name, start, err)
		}
		g.Line = start
		if prev, dup := keys[g.Key()]; dup {
			return fmt.Errorf("%s:%d: first resource %q already starts the group on line %d; it must be unique", name, start, g.Key(), prev)
		}
		keys[g.Key()] = start
		c.Groups = append(c.Groups, g)
		return nil
	}
	for sc.Scan() {
		lineno++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = strings.TrimSuffix(line, "\r")
		if logical.Len() == 0 {
			start = lineno
		}
		cont := strings.HasSuffix(line, `\`)
		logical.WriteString(strings.TrimSuffix(line, `\`))
		if logical.Len() > maxGroup {
			return nil, fmt.Errorf("%s:%d: resource group longer than %d bytes", name, start, maxGroup)
		}
		if !cont {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", name, lineno+1, err)
	}
	if logical.Len() > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func parseGroup(words []string) (Group, error) {
	g := Group{Node: lower(words[0])}
	if len(words) == 1 {
		return g, fmt.Errorf("node %q has no resources", words[0])
	}
	for _, w := range words[1:] {
		r, err := ParseResource(w)
		if err != nil {
			return g, err
		}
		g.Resources = append(g.Resources, r)
	}
	return g, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// looksLikeIP is ResourceManager's isip: the shell pattern
// [0-9]*.[0-9]*.[0-9]*.[0-9]*.
func looksLikeIP(w string) bool {
	if w == "" || w[0] < '0' || w[0] > '9' {
		return false
	}
	rest := w[1:]
	for range 3 {
		i := indexDotDigit(rest)
		if i < 0 {
			return false
		}
		rest = rest[i+2:]
	}
	return true
}

// indexDotDigit returns the index of the first '.' followed by a digit.
func indexDotDigit(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '.' && s[i+1] >= '0' && s[i+1] <= '9' {
			return i
		}
	}
	return -1
}

// ParseResource parses one resource word.
func ParseResource(w string) (Resource, error) {
	r := Resource{Word: w}
	if looksLikeIP(w) {
		r.Script, r.Args = IPaddr, []string{w}
	} else {
		parts := strings.Split(w, "::")
		r.Script, r.Args = parts[0], parts[1:]
	}
	if r.Script == "" {
		return r, fmt.Errorf("resource %q has no script name", w)
	}
	if strings.ContainsAny(r.Script, "/:") {
		return r, fmt.Errorf("resource %q: script name %q may not contain '/' or ':'", w, r.Script)
	}
	for _, a := range r.Args {
		if a == "" {
			return r, fmt.Errorf("resource %q has an empty argument", w)
		}
	}
	switch r.Script {
	case IPaddr, IPaddr2:
		if len(r.Args) != 1 {
			return r, fmt.Errorf("resource %q: %s takes one argument, ip[/prefix[/interface[/broadcast]]]", w, r.Script)
		}
		ip, err := ParseIPAddr(r.Args[0], r.Script == IPaddr2)
		if err != nil {
			return r, fmt.Errorf("resource %q: %w", w, err)
		}
		r.IP = ip
	case Lnoded:
		if len(r.Args) != 1 {
			return r, fmt.Errorf("resource %q: lnoded takes one argument, its configuration file (lnoded::lnoded.cf)", w)
		}
	case Ldirectord:
		if len(r.Args) > 1 {
			return r, fmt.Errorf("resource %q: ldirectord takes at most one argument, its configuration file", w)
		}
	}
	return r, nil
}

// ParseIPAddr parses "ip[/prefix[/interface[/broadcast]]]". IPv6 is
// accepted only when ipv6 is set (IPaddr2).
func ParseIPAddr(s string, ipv6 bool) (*IPAddr, error) {
	f := strings.Split(s, "/")
	a, err := netip.ParseAddr(f[0])
	if err != nil || a.Zone() != "" || (a.Is6() && !ipv6) {
		return nil, fmt.Errorf("%q is not an IPv4 address", f[0])
	}
	ip := &IPAddr{Addr: a, PrefixLen: -1}
	if len(f) > 4 {
		return nil, fmt.Errorf("%q has too many '/' fields (ip/prefix/interface/broadcast)", s)
	}
	rest := f[1:]
	if len(rest) > 0 {
		n, err := strconv.Atoi(rest[0])
		if err != nil || n < 0 || n > a.BitLen() || rest[0][0] == '+' {
			return nil, fmt.Errorf("prefix length %q is not 0..%d", rest[0], a.BitLen())
		}
		ip.PrefixLen = n
		rest = rest[1:]
	}
	if len(rest) > 0 {
		// The interface may be left out before a broadcast address.
		if b, err := netip.ParseAddr(rest[0]); err == nil && len(rest) == 1 {
			ip.Broadcast = b
			rest = nil
		} else {
			if rest[0] == "" || strings.ContainsAny(rest[0], " \t") || len(rest[0]) > 15 {
				return nil, fmt.Errorf("interface name %q is not valid", rest[0])
			}
			ip.Interface = rest[0]
			rest = rest[1:]
		}
	}
	if len(rest) > 0 {
		b, err := netip.ParseAddr(rest[0])
		if err != nil {
			return nil, fmt.Errorf("broadcast %q is not an address", rest[0])
		}
		ip.Broadcast = b
	}
	if ip.Broadcast.IsValid() && (!a.Is4() || !ip.Broadcast.Is4()) {
		return nil, fmt.Errorf("broadcast addresses exist only for IPv4")
	}
	return ip, nil
}
