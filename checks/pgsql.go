package checks

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// PgSQLChecker is ldirectord's negotiate check for service=pgsql (DBI with
// DBD::Pg): it connects as login with passwd to database, runs the request
// (without its leading "/") as a query, and is up when the query returns at
// least one row. Like ldirectord it needs both a login and a request; without
// them New returns a checker that is always down and says why (ldirectord
// loads such a file too), and this constructor an error. TLS is used when the server offers it
// (libpq's sslmode=prefer, as DBD::Pg), without verifying the certificate.
//
// ldirectord sets no timeout on this check at all, so a server that accepts
// and never answers stalls it; here negotiatetimeout bounds it.
type PgSQLChecker struct {
	cfg     *pgx.ConnConfig
	query   string
	desc    string
	timeout time.Duration
}

// NewPgSQL builds the check for service=pgsql.
func NewPgSQL(cfg Config) (*PgSQLChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("pgsql check: no real server address")
	}
	query := strings.TrimPrefix(cfg.request(), "/")
	if cfg.Login == "" || query == "" {
		return nil, errors.New(`pgsql check: ldirectord needs login and request (an SQL query such as "SELECT 1") and is always down without them`)
	}
	u := url.URL{
		Scheme: "postgres",
		User:   url.UserPassword(cfg.Login, cfg.Passwd),
		Host:   cfg.Addr.String(),
		Path:   "/" + cfg.Database,
		RawQuery: url.Values{
			"sslmode": {"prefer"},
			// pgx's own dial timeout; the context bounds everything.
			"connect_timeout": {strconv.Itoa(max(1, int(cfg.negotiateTimeout().Seconds())))},
		}.Encode(),
	}
	pc, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("pgsql check: %w", err)
	}
	// Without a database, PostgreSQL uses the login's name, as libpq does.
	pc.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return &PgSQLChecker{
		cfg:     pc,
		query:   query,
		desc:    fmt.Sprintf("PostgreSQL query %q as %q on database %q at %s", query, cfg.Login, cfg.Database, cfg.Addr),
		timeout: cfg.negotiateTimeout(),
	}, nil
}

// Check implements Checker.
func (c *PgSQLChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *PgSQLChecker) check(ctx context.Context) Result {
	conn, err := pgx.ConnectConfig(ctx, c.cfg.Copy())
	if err != nil {
		return down("", fmt.Errorf("connecting: %w", err))
	}
	// Close sends Terminate only while ctx allows, then drops the socket.
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, c.query)
	if err != nil {
		return down("", fmt.Errorf("query: %w", err))
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return down("", fmt.Errorf("query: %w", err))
	}
	if n == 0 {
		return down("query returned no rows", nil)
	}
	return up(fmt.Sprintf("query returned %d row(s)", n))
}

// String says in words what the check does and expects.
func (c *PgSQLChecker) String() string {
	return fmt.Sprintf("%s expecting at least one row within %v", c.desc, c.timeout)
}
