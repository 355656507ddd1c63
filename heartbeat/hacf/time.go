package hacf

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxMillis bounds times so that they fit Heartbeat's long milliseconds
// on any platform and cannot overflow a time.Duration.
const maxMillis = 1 << 31

// ParseTime parses a time as Heartbeat's cl_get_msec does: a decimal
// number of seconds ("2", "0.5"), or a number followed by "ms"/"msec"
// (milliseconds) or "us"/"usec" (microseconds), units case-insensitive and
// optionally after blanks. The result is rounded to whole milliseconds,
// halves up ("499us" is 0 ms, "501us" is 1 ms). Unlike cl_get_msec it
// refuses trailing junk ("5s", "5msx", "1.2.3") instead of guessing.
func ParseTime(s string) (time.Duration, error) {
	num := s
	unit := ""
	if i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }); i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimLeft(s[i:], " \t"))
	}
	if num == "" || num == "." || strings.Count(num, ".") > 1 {
		return 0, fmt.Errorf("bad time %q: want seconds (\"2\", \"0.5\") or milliseconds (\"500ms\")", s)
	}
	var mult float64
	switch unit {
	case "":
		mult = 1000
	case "ms", "msec":
		mult = 1
	case "us", "usec":
		mult = 0.001
	default:
		return 0, fmt.Errorf("bad time %q: unit %q is not ms, msec, us or usec (plain numbers are seconds)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad time %q", s)
	}
	ms := v*mult + 0.5
	if ms >= maxMillis {
		return 0, fmt.Errorf("time %q is too large", s)
	}
	return time.Duration(int64(ms)) * time.Millisecond, nil
}
