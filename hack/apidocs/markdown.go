package main

import (
	"strings"
	"unicode"
)

// paragraphs joins the lines of each paragraph of a Go doc comment (as controller-gen copies
// it) into one line, escapes it, and separates the paragraphs with sep.
func paragraphs(desc, sep string) string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(desc), "\n\n") {
		if p = strings.Join(strings.Fields(p), " "); p != "" {
			out = append(out, escape(p))
		}
	}
	return strings.Join(out, sep)
}

// escape makes prose safe in Markdown: what looks like an HTML tag ("<name>") or emphasis
// ("major*1000") is shown as written. Code spans (`...`) are kept as they are.
func escape(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		if r == '`' {
			if end := closingTick(rs, i); end > i {
				b.WriteString(string(rs[i : end+1]))
				i = end
				continue
			}
			b.WriteString("\\`")
			continue
		}
		switch {
		case r == '<' && i+1 < len(rs) && (unicode.IsLetter(rs[i+1]) || strings.ContainsRune("/!?", rs[i+1])):
			// Only "<" before a letter, "/", "!" or "?" can open an HTML tag or autolink.
			b.WriteString("&lt;")
		case r == '*' || r == '\\':
			b.WriteString("\\" + string(r))
		case r == '_' && !(i > 0 && i+1 < len(rs) && isWord(rs[i-1]) && isWord(rs[i+1])):
			// Intra-word underscores (NVIDIA_REQUIRE_CUDA) never start emphasis.
			b.WriteString("\\_")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// closingTick returns the index of the backtick closing the code span opened at i, or -1.
func closingTick(rs []rune, i int) int {
	for j := i + 1; j < len(rs); j++ {
		if rs[j] == '`' {
			return j
		}
	}
	return -1
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// code is s as a code span, fenced with more backticks than s holds in a row.
func code(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	if longest > 0 {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func codeList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}

// cell makes Markdown fit in one table cell: a pipe, even in a code span, would end it.
func cell(s string) string {
	return strings.ReplaceAll(s, "|", `\|`)
}
