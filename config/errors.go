package config

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem with the configuration, located where it was written.
type Error struct {
	Pos
	// Msg says what is wrong and what to do about it.
	Msg string
	// Err is the underlying cause (an I/O error, a parser's error), if any.
	Err error
}

// Error renders the error as "file:line: message".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	// A parser's error already says its cause; do not say it twice.
	if e.Err != nil && !strings.HasSuffix(e.Msg, e.Err.Error()) {
		if e.Msg != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// String renders the position as "file:line", "file" when the line is
// unknown, or "" when both are.
func (p Pos) String() string {
	switch {
	case p.File == "":
		return ""
	case p.Line <= 0:
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// ErrorList is every problem found, sorted by file and line. The loaders
// return one (and no Config) when there is any.
type ErrorList []*Error

// Error renders every error, one per line.
func (l ErrorList) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap gives errors.Is and errors.As access to each error.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// AsErrorList returns the ErrorList inside err, if there is one.
func AsErrorList(err error) (ErrorList, bool) {
	var l ErrorList
	ok := errors.As(err, &l)
	return l, ok
}

// Diagnostic is a warning about a setting.
type Diagnostic struct {
	Pos
	Msg string
}

// String renders the warning as "file:line: message".
func (d Diagnostic) String() string {
	if p := d.Pos.String(); p != "" {
		return p + ": " + d.Msg
	}
	return d.Msg
}

// problems collects errors and warnings while a configuration is read and
// validated, so that all are reported at once.
type problems struct {
	errs  ErrorList
	warns []Diagnostic
}

func (p *problems) errorf(at Pos, format string, a ...any) {
	p.errs = append(p.errs, &Error{Pos: at, Msg: fmt.Sprintf(format, a...)})
}

func (p *problems) warnf(at Pos, format string, a ...any) {
	p.warns = append(p.warns, Diagnostic{Pos: at, Msg: fmt.Sprintf(format, a...)})
}

// foreign adds an error from one of the file parsers, whose messages start
// with "file:line: " (or "file: "); the position is recovered so that the
// list sorts and callers can use it.
func (p *problems) foreign(file string, err error) {
	msg := err.Error()
	at := Pos{File: file}
	if rest, ok := strings.CutPrefix(msg, file+":"); ok {
		num, after, found := strings.Cut(rest, ": ")
		if n, err := strconv.Atoi(num); err == nil && found {
			at.Line, msg = n, after
		} else {
			msg = strings.TrimPrefix(rest, " ")
		}
	}
	p.errs = append(p.errs, &Error{Pos: at, Msg: msg, Err: errors.Unwrap(err)})
}

// result sorts what was collected and returns the error list, nil when
// there is none.
func (p *problems) result() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.SliceStable(p.errs, func(i, j int) bool { return posLess(p.errs[i].Pos, p.errs[j].Pos) })
	return p.errs
}

func (p *problems) warnings() []Diagnostic {
	sort.SliceStable(p.warns, func(i, j int) bool { return posLess(p.warns[i].Pos, p.warns[j].Pos) })
	return p.warns
}

func posLess(a, b Pos) bool {
	if a.File != b.File {
		return a.File < b.File
	}
	return a.Line < b.Line
}

func lower(s string) string { return strings.ToLower(s) }
