{{/* Chart name, cut to the 63 characters a label value allows. */}}
{{- define "task-api.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name of every object: the release name, unless it already contains the chart name. */}}
{{- define "task-api.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "task-api.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "task-api.selectorLabels" -}}
app.kubernetes.io/name: {{ include "task-api.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "task-api.labels" -}}
helm.sh/chart: {{ include "task-api.chart" . }}
{{ include "task-api.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | trunc 63 | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: task-platform
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "task-api.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "task-api.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, pinned to the digest when one is given. */}}
{{- define "task-api.image" -}}
{{- $ref := printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- if .Values.image.digest -}}
{{- $ref = printf "%s@%s" $ref .Values.image.digest -}}
{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* Name of the Secret that holds DATABASE_URL. */}}
{{- define "task-api.databaseSecretName" -}}
{{- if .Values.database.externalSecret.enabled -}}
{{- default (printf "%s-database" (include "task-api.fullname" .)) .Values.database.existingSecret.name -}}
{{- else -}}
{{- required "database.existingSecret.name (or database.externalSecret.enabled) is required: DATABASE_URL never comes from values" .Values.database.existingSecret.name -}}
{{- end -}}
{{- end -}}

{{/*
Pod termination budget: the preStop pause, then the service's own drain, plus a margin for
the process to flush telemetry and exit before the kubelet sends SIGKILL.
*/}}
{{- define "task-api.terminationGracePeriodSeconds" -}}
{{- add .Values.config.preStopSleepSeconds .Values.config.shutdownGraceSeconds 5 -}}
{{- end -}}
