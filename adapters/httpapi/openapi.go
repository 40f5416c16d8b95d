package httpapi

import (
	"context"
	"embed"
	"fmt"
	"net/http"
	"path"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
)

// openapiFS holds the OpenAPI document and the documentation page's assets, so /docs needs
// no CDN.
//
//go:embed openapi/openapi.yaml openapi/docs.html openapi/docs.js openapi/docs.css
var openapiFS embed.FS

// OpenAPI returns the API's OpenAPI 3.1 document, parsed and validated.
func OpenAPI() (*openapi3.T, error) {
	data, err := openapiFS.ReadFile("openapi/openapi.yaml")
	if err != nil {
		return nil, fmt.Errorf("read openapi document: %w", err)
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("parse openapi document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid openapi document: %w", err)
	}
	return doc, nil
}

// registerDocRoutes serves the document as JSON and the documentation page.
func (s *Server) registerDocRoutes(e *echo.Echo) error {
	doc, err := OpenAPI()
	if err != nil {
		return err
	}
	body, err := doc.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encode openapi document: %w", err)
	}
	e.GET("/api/openapi.json", func(c echo.Context) error {
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
	})
	e.GET("/docs", func(c echo.Context) error {
		page, err := openapiFS.ReadFile("openapi/docs.html")
		if err != nil {
			return err
		}
		return c.HTMLBlob(http.StatusOK, page)
	})
	e.GET("/docs/:asset", func(c echo.Context) error {
		types := map[string]string{"docs.js": "text/javascript; charset=utf-8", "docs.css": "text/css; charset=utf-8"}
		name := path.Base(c.Param("asset"))
		ct, ok := types[name]
		if !ok {
			return echo.NewHTTPError(http.StatusNotFound, "No such asset.")
		}
		b, err := openapiFS.ReadFile("openapi/" + name)
		if err != nil {
			return err
		}
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return c.Blob(http.StatusOK, ct, b)
	})
	return nil
}
