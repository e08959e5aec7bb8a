module github.com/trainenv/trainenv/e2e/tools/realenv

go 1.26.0

require (
	github.com/chromedp/chromedp v0.23.1
	github.com/gorilla/websocket v1.5.3
)

require (
	github.com/chromedp/cdproto v0.160.1 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
)
