// The Go peer: the login gateway a design team commonly writes by hand with Gin, golang-jwt and
// redigo, kept as a measuring instrument for `npm run bench:peers` (BENCHMARKS.md, "The Go peer").
// It is not part of the package. It serves the requests the bench's load generator sends to the
// gateway (POST /auth/login {code}, GET /auth/me with a Bearer token, POST /auth/refresh
// {refreshToken}, GET /health/live), against the same WeChat simulator and Redis.
//
// Built in GOPATH mode against Debian's packages (golang-github-gin-gonic-gin-dev,
// golang-github-golang-jwt-jwt-dev, golang-github-gomodule-redigo-dev); configured by the gateway's
// own variable names: PORT, REDIS_URL, WECHAT_API_BASE, WECHAT_APPID, WECHAT_SECRET, JWT_SECRET, and
// REDIS_POOL (connections, default 8 per GOMAXPROCS).
package main

import (
	"context"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gomodule/redigo/redis"
)

type config struct {
	port, redisURL, wechatBase, appid, secret string
	jwtSecret                                 []byte
	redisPool                                 int
}

func mustEnv(name string) string {
	v := os.Getenv(name)
	if v == "" {
		log.Fatalf("%s is required", name)
	}
	return v
}

func configFromEnv() config {
	// A request holds a connection for one round trip; with two threads running, more than a few per
	// thread only adds connections for Redis to poll. Wait (below) queues the rest.
	pool := 8 * runtime.GOMAXPROCS(0)
	if v := os.Getenv("REDIS_POOL"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			log.Fatalf("REDIS_POOL must be a number of connections, not %q", v)
		}
		pool = n
	}
	secret := mustEnv("JWT_SECRET")
	if len(secret) < 32 {
		log.Fatal("JWT_SECRET must be at least 32 characters")
	}
	return config{
		port:       mustEnv("PORT"),
		redisURL:   mustEnv("REDIS_URL"),
		wechatBase: mustEnv("WECHAT_API_BASE"),
		appid:      mustEnv("WECHAT_APPID"),
		secret:     mustEnv("WECHAT_SECRET"),
		jwtSecret:  []byte(secret),
		redisPool:  pool,
	}
}

func newPool(cfg config) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     cfg.redisPool,
		MaxActive:   cfg.redisPool,
		Wait:        true,
		IdleTimeout: 5 * time.Minute,
		Dial:        func() (redis.Conn, error) { return redis.DialURL(cfg.redisURL) },
	}
}

func routes(s *server) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/health/live", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.POST("/auth/login", s.login)
	r.POST("/auth/refresh", s.refresh)
	authed := r.Group("/auth", s.authenticate)
	authed.GET("/me", s.me)
	authed.POST("/logout", s.logout)
	return r
}

func main() {
	cfg := configFromEnv()
	pool := newPool(cfg)
	defer pool.Close()
	// Refuse to start without Redis, as the gateway does.
	conn := pool.Get()
	if _, err := conn.Do("PING"); err != nil {
		log.Fatalf("redis at %s: %v", cfg.redisURL, err)
	}
	conn.Close()

	s := &server{pool: pool, wechat: newWechat(cfg), jwtSecret: cfg.jwtSecret}
	srv := &http.Server{Addr: "127.0.0.1:" + cfg.port, Handler: routes(s), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			log.Fatal(err)
		}
	}()
	log.Printf("go peer (gin %s, GOMAXPROCS %d, %d redis connections) on %s", gin.Version, runtime.GOMAXPROCS(0), cfg.redisPool, srv.Addr)

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
