package checks

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQLChecker is ldirectord's negotiate check for service=mysql (DBI with
// DBD::mysql): it connects as login with passwd to database, runs the request
// (without its leading "/") as a query, and is up when the query returns at
// least one row. Like ldirectord it needs both a login and a request; without
// them New returns a checker that is always down and says why (ldirectord
// loads such a file too), and this constructor an error. Each check opens and closes its own
// connection.
//
// ldirectord sets no timeout on this check at all, so a server that accepts
// and never answers stalls it; here negotiatetimeout bounds it.
type MySQLChecker struct {
	connector driver.Connector
	query     string
	desc      string
	timeout   time.Duration
}

// NewMySQL builds the check for service=mysql.
func NewMySQL(cfg Config) (*MySQLChecker, error) {
	if !cfg.Addr.IsValid() {
		return nil, errors.New("mysql check: no real server address")
	}
	query := strings.TrimPrefix(cfg.request(), "/")
	if cfg.Login == "" || query == "" {
		return nil, errors.New(`mysql check: ldirectord needs login and request (an SQL query such as "SELECT 1") and is always down without them`)
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd = cfg.Login, cfg.Passwd
	mc.Net, mc.Addr = "tcp", cfg.Addr.String()
	mc.DBName = cfg.Database
	mc.Timeout = cfg.negotiateTimeout()
	// The result says what went wrong; the driver must not log to stderr.
	mc.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql check: %w", err)
	}
	return &MySQLChecker{
		connector: conn,
		query:     query,
		desc:      fmt.Sprintf("MySQL query %q as %q on database %q at %s", query, cfg.Login, cfg.Database, cfg.Addr),
		timeout:   cfg.negotiateTimeout(),
	}, nil
}

// Check implements Checker.
func (c *MySQLChecker) Check(ctx context.Context) Result {
	return timed(ctx, c.timeout, c.check)
}

func (c *MySQLChecker) check(ctx context.Context) Result {
	// A DB of its own per check: one connection, closed afterwards.
	db := sql.OpenDB(c.connector)
	defer db.Close()
	db.SetMaxIdleConns(0)
	rows, err := db.QueryContext(ctx, c.query)
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
func (c *MySQLChecker) String() string {
	return fmt.Sprintf("%s expecting at least one row within %v", c.desc, c.timeout)
}
