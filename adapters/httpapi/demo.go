package httpapi

import (
	"fmt"
	"html"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// demoPeriod is the period of the demo price: it crosses $80 every three minutes, so the
// demo monitors change state every few minutes.
const demoPeriod = 6 * time.Minute

// DemoPrice is the demo product's price at t: $60 to $100 on a sine wave, phase shifting
// the wave by phase.
func DemoPrice(t time.Time, phase time.Duration) float64 {
	x := float64(t.Add(phase).UnixNano()%int64(demoPeriod)) / float64(demoPeriod)
	return math.Round((80+20*math.Sin(2*math.Pi*x))*100) / 100
}

func (s *Server) demoPrice(c echo.Context) error {
	now := s.cfg.Now().UTC()
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{
		"product":    "Demo widget",
		"price":      DemoPrice(now, 0),
		"currency":   "USD",
		"updated_at": now.Format(time.RFC3339),
	})
}

func (s *Server) demoPage(c echo.Context) error {
	now := s.cfg.Now().UTC()
	price := DemoPrice(now, demoPeriod/4)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(http.StatusOK, fmt.Sprintf(`<!doctype html>
<html><head><title>Demo shop</title></head>
<body><h1>Demo gadget</h1>
<p class="price">Price: $%.2f</p>
<p>Updated %s</p></body></html>`, price, html.EscapeString(now.Format(time.RFC1123))))
}
