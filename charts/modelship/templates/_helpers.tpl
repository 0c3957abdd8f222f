{{- define "modelship.name" -}}{{ printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "modelship.labels" -}}
app.kubernetes.io/name: modelship-operator
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelship
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "modelship.selector" -}}
app.kubernetes.io/name: modelship-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
