package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// wechat calls code2Session over HTTP, keeping connections to WeChat (here the simulator) alive.
type wechat struct {
	client              *http.Client
	base, appid, secret string
}

type wxSession struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
	ErrCode    int    `json:"errcode"`
	ErrMsg     string `json:"errmsg"`
}

// wxError is an errcode WeChat answered (with HTTP 200, as it does).
type wxError struct {
	code int
	msg  string
}

func (e *wxError) Error() string { return fmt.Sprintf("wechat errcode %d: %s", e.code, e.msg) }

func newWechat(cfg config) *wechat {
	// The default transport keeps 2 idle connections per host: under 50 concurrent logins it would
	// open and close connections all the time.
	transport := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	return &wechat{
		client: &http.Client{Transport: transport, Timeout: 5 * time.Second},
		base:   cfg.wechatBase, appid: cfg.appid, secret: cfg.secret,
	}
}

// code2Session: GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code.
func (w *wechat) code2Session(ctx context.Context, code string) (*wxSession, error) {
	q := url.Values{"appid": {w.appid}, "secret": {w.secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.base+"/sns/jscode2session?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	res, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	// Read to the end, so that the connection goes back to the pool.
	defer func() {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("code2Session: HTTP %d", res.StatusCode)
	}
	var s wxSession
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return nil, fmt.Errorf("code2Session: %w", err)
	}
	if s.ErrCode != 0 || s.OpenID == "" {
		return nil, &wxError{code: s.ErrCode, msg: s.ErrMsg}
	}
	return &s, nil
}
