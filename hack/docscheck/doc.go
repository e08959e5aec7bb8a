// Package docscheck holds the tests that keep the hand-written documentation (README.md,
// docs/) true to the code: every condition reason the code can set is explained in
// docs/troubleshooting.md, and no explained reason is one the code never sets; relative
// links resolve; `make` targets exist; spec and status field paths exist in the CRD.
package docscheck
