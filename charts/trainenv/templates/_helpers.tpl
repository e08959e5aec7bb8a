{{/* The prefix of every name: the release name, plus "-trainenv" unless it contains it. */}}
{{- define "trainenv.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A name for one object: fullname-suffix. */}}
{{- define "trainenv.name" -}}
{{- printf "%s-%s" (include "trainenv.fullname" .root) .suffix -}}
{{- end -}}

{{/* config/ names its objects trainenv-SUFFIX; the chart names them FULLNAME-SUFFIX. */}}
{{- define "trainenv.rename" -}}
{{- include "trainenv.name" (dict "root" .root "suffix" (trimPrefix "trainenv-" .name)) -}}
{{- end -}}

{{- define "trainenv.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: trainenv
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* metadata labels and annotations of an object of the given component. */}}
{{- define "trainenv.meta" -}}
labels:
  {{- include "trainenv.labels" .root | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
{{- with .root.Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{- define "trainenv.selectorLabels" -}}
app.kubernetes.io/name: trainenv
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* repository@digest, or repository:tag (tag defaults to the appVersion). */}}
{{- define "trainenv.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "trainenv.serviceAccount" -}}
{{- include "trainenv.name" (dict "root" . "suffix" "controller-manager") -}}
{{- end -}}

{{- define "trainenv.agentServiceAccount" -}}
{{- include "trainenv.name" (dict "root" . "suffix" "node-agent") -}}
{{- end -}}

{{/*
Objects of a file synced from config/ (files/...), one per YAML document, each as a dict.
Usage: include "trainenv.docs" (dict "root" $ "file" "files/rbac/role.yaml") | fromYaml
returns {"items": [...]} (Helm templates can only return strings).
*/}}
{{- define "trainenv.docs" -}}
{{- $items := list -}}
{{- range $doc := regexSplit "(?m)^---\\s*$" (.root.Files.Get .file) -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if and $obj (hasKey $obj "kind") -}}
{{- $items = append $items $obj -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "items" $items) -}}
{{- end -}}
