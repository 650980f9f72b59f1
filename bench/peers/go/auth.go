package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt" // v4 (Debian: GOPATH mode has no /v4 directory)
	"github.com/gomodule/redigo/redis"
)

const (
	accessTTL  = 15 * time.Minute
	refreshTTL = 7 * 24 * time.Hour
)

type server struct {
	pool      *redis.Pool
	wechat    *wechat
	jwtSecret []byte
}

type claims struct {
	OpenID string `json:"openid"`
	jwt.RegisteredClaims
}

// The gateway's token pair's field names, so that the same load generator reads both.
type tokenPair struct {
	AccessToken      string `json:"accessToken"`
	TokenType        string `json:"tokenType"`
	ExpiresIn        int    `json:"expiresIn"`
	RefreshToken     string `json:"refreshToken"`
	RefreshExpiresIn int    `json:"refreshExpiresIn"`
	OpenID           string `json:"openid"`
	UnionID          string `json:"unionid,omitempty"`
}

func fail(c *gin.Context, status int, code string) {
	c.AbortWithStatusJSON(status, gin.H{"code": code})
}

func storeFailed(c *gin.Context, err error) {
	log.Printf("redis: %v", err)
	fail(c, http.StatusServiceUnavailable, "STORE_UNAVAILABLE")
}

func randomToken(bytes int) string {
	b := make([]byte, bytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// issue signs an access token, and stores it and a new refresh token.
func (s *server) issue(openid, unionid string) (*tokenPair, error) {
	now := time.Now()
	access, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		OpenID: openid,
		RegisteredClaims: jwt.RegisteredClaims{
			ID:        randomToken(16),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(accessTTL)),
		},
	}).SignedString(s.jwtSecret)
	if err != nil {
		return nil, err
	}
	refresh := randomToken(32)
	conn := s.pool.Get()
	defer conn.Close()
	if _, err := conn.Do("SET", "auth:token:"+openid, access, "EX", int(accessTTL.Seconds())); err != nil {
		return nil, err
	}
	if _, err := conn.Do("SET", "rt:"+refresh, openid, "EX", int(refreshTTL.Seconds())); err != nil {
		return nil, err
	}
	return &tokenPair{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(accessTTL.Seconds()),
		RefreshToken: refresh, RefreshExpiresIn: int(refreshTTL.Seconds()), OpenID: openid, UnionID: unionid,
	}, nil
}

func (s *server) login(c *gin.Context) {
	var body struct {
		Code string `json:"code" binding:"required"`
	}
	if err := c.ShouldBindJSON(&body); err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST")
		return
	}
	wx, err := s.wechat.code2Session(c.Request.Context(), body.Code)
	var refused *wxError
	if errors.As(err, &refused) {
		fail(c, http.StatusUnauthorized, "WX_CODE_INVALID")
		return
	}
	if err != nil {
		log.Printf("wechat: %v", err)
		fail(c, http.StatusBadGateway, "WX_UNAVAILABLE")
		return
	}
	pair, err := s.issue(wx.OpenID, wx.UnionID)
	if err != nil {
		storeFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, pair)
}

// refresh takes the refresh token once (GETDEL) and issues a new pair.
func (s *server) refresh(c *gin.Context) {
	var body struct {
		RefreshToken string `json:"refreshToken" binding:"required"`
	}
	if err := c.ShouldBindJSON(&body); err != nil {
		fail(c, http.StatusBadRequest, "BAD_REQUEST")
		return
	}
	conn := s.pool.Get()
	openid, err := redis.String(conn.Do("GETDEL", "rt:"+body.RefreshToken))
	conn.Close()
	if err == redis.ErrNil {
		fail(c, http.StatusUnauthorized, "REFRESH_TOKEN_INVALID")
		return
	}
	if err != nil {
		storeFailed(c, err)
		return
	}
	pair, err := s.issue(openid, "")
	if err != nil {
		storeFailed(c, err)
		return
	}
	c.JSON(http.StatusOK, pair)
}

// authenticate verifies the Bearer JWT and checks the blacklist.
func (s *server) authenticate(c *gin.Context) {
	header := c.GetHeader("Authorization")
	if !strings.HasPrefix(header, "Bearer ") {
		fail(c, http.StatusUnauthorized, "UNAUTHORIZED")
		return
	}
	var cl claims
	_, err := jwt.ParseWithClaims(header[len("Bearer "):], &cl, func(*jwt.Token) (interface{}, error) { return s.jwtSecret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
	if err != nil || cl.ID == "" || cl.OpenID == "" {
		fail(c, http.StatusUnauthorized, "TOKEN_INVALID")
		return
	}
	conn := s.pool.Get()
	blacklisted, err := redis.Bool(conn.Do("EXISTS", "blacklist:"+cl.ID))
	conn.Close()
	if err != nil {
		storeFailed(c, err)
		return
	}
	if blacklisted {
		fail(c, http.StatusUnauthorized, "TOKEN_REVOKED")
		return
	}
	c.Set("claims", &cl)
	c.Next()
}

func (s *server) me(c *gin.Context) {
	cl := c.MustGet("claims").(*claims)
	c.JSON(http.StatusOK, gin.H{"openid": cl.OpenID})
}

// logout blacklists the access token until it would have expired.
func (s *server) logout(c *gin.Context) {
	cl := c.MustGet("claims").(*claims)
	ttl := int(time.Until(cl.ExpiresAt.Time).Seconds()) + 1
	conn := s.pool.Get()
	_, err := conn.Do("SET", "blacklist:"+cl.ID, 1, "EX", ttl)
	conn.Close()
	if err != nil {
		storeFailed(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
