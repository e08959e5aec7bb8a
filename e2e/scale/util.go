//go:build scalebench

package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"
)

var startTime = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(startTime).Seconds(), fmt.Sprintf(format, args...))
}

// parallel runs f(0..n-1) on workers goroutines, starting at most rate calls per second
// (0: no limit), and returns the first error.
func parallel(ctx context.Context, n, workers int, rate float64, f func(int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	go func() {
		defer close(next)
		var tick <-chan time.Time
		if rate > 0 {
			t := time.NewTicker(time.Duration(float64(time.Second) / rate))
			defer t.Stop()
			tick = t.C
		}
		for i := range n {
			if tick != nil {
				select {
				case <-tick:
				case <-ctx.Done():
					return
				}
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// poll is kwok's pass/fail shape for scale tests: check progress once a second, fail if
// it does not move for stall, or if everything is not done within timeout.
func poll(ctx context.Context, what string, want int, stall, timeout time.Duration, progress func() (int, error)) error {
	start := time.Now()
	last, lastMove, lastLog := -1, start, start
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		done, err := progress()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		now := time.Now()
		if done >= want {
			return nil
		}
		if done > last {
			last, lastMove = done, now
		}
		switch {
		case now.Sub(lastMove) > stall:
			return fmt.Errorf("%s: no progress for %s (%d/%d)", what, stall, done, want)
		case now.Sub(start) > timeout:
			return fmt.Errorf("%s: timed out after %s (%d/%d)", what, timeout, done, want)
		case now.Sub(lastLog) >= 5*time.Second:
			logf("%s: %d/%d", what, done, want)
			lastLog = now
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
