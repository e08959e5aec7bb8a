package controller_test

import "go.uber.org/zap/zapcore"

type zapcoreLevel = zapcore.Level
