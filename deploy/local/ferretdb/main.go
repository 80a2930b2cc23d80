// Command ferretdb runs FerretDB v1 with its SQLite or PostgreSQL backend for local
// development and tests on machines without Docker. It embeds the library package because a
// plain `go install` of FerretDB's own command lacks its version file and refuses
// to start.
package main

import (
	"context"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	dataDir := flag.String("sqlite-dir", "data/", "directory holding the SQLite databases (sqlite)")
	postgresqlURL := flag.String("postgresql-url", "", "PostgreSQL URL, e.g. postgres://user@127.0.0.1:5433/ferretdb (postgresql)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatalf("bad -log-level: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	config := &ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: *listen},
		Logger:   logger,
		Handler:  *handler,
	}
	switch *handler {
	case "sqlite":
		if err := os.MkdirAll(*dataDir, 0o755); err != nil {
			log.Fatalf("cannot create %s: %v", *dataDir, err)
		}
		// WAL with synchronous=NORMAL, SQLite's recommended pairing: a commit no longer
		// waits for fsync (FULL, the default, spent half of this machine's CPU in the
		// kernel under load); a power cut may lose the last commits, never corrupt.
		config.SQLiteURL = "file:" + *dataDir + "?_pragma=synchronous(normal)"
	case "postgresql":
		if *postgresqlURL == "" {
			log.Fatal("-handler postgresql needs -postgresql-url")
		}
		config.PostgreSQLURL = *postgresqlURL
	default:
		log.Fatalf("bad -handler %q: sqlite or postgresql", *handler)
	}
	db, err := ferretdb.New(config)
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	go func() {
		logger.Warn("FerretDB listening", "uri", db.MongoDBURI())
	}()
	if err := db.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
