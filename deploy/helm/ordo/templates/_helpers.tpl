{{/* ordo.name is the chart name, or nameOverride. */}}
{{- define "ordo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* ordo.fullname prefixes every object name: "<release>-<name>", or fullnameOverride. */}}
{{- define "ordo.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "ordo.name" .) | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* ordo.selectorLabels selects one component's pods; call with (dict "root" $ "component" "gateway"). */}}
{{- define "ordo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ordo.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* ordo.labels are the labels of every object of a component. */}}
{{- define "ordo.labels" -}}
{{ include "ordo.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ordo
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* ordo.image is the image every program runs. */}}
{{- define "ordo.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* ordo.workspace is the workspace file's JSON; rendering fails when it is not a JSON object. */}}
{{- define "ordo.workspace" -}}
{{- if not (kindIs "string" .Values.workspace) -}}
{{- fail "workspace must be JSON text (helm --set-file workspace=FILE reads it from a file)" -}}
{{- end -}}
{{- $parsed := fromJson .Values.workspace -}}
{{- if or (not $parsed) (hasKey $parsed "Error") -}}
{{- fail (printf "workspace is not a JSON object: %v" (default "empty" $parsed.Error)) -}}
{{- end -}}
{{- .Values.workspace | trim -}}
{{- end -}}

{{/* ordo.workspacePath is ORDO_WORKSPACE_CONFIG inside the containers. */}}
{{- define "ordo.workspacePath" -}}/etc/ordo/workspace.json{{- end -}}

{{/* ordo.commonEnv is the env every program reads: the catalog URL from its Secret, and logging. */}}
{{- define "ordo.commonEnv" -}}
- name: ORDO_CATALOG_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "catalog.secretName is required" .Values.catalog.secretName }}
      key: {{ required "catalog.secretKey is required" .Values.catalog.secretKey }}
- name: ORDO_LOG_FORMAT
  value: {{ .Values.log.format | quote }}
- name: ORDO_LOG_LEVEL
  value: {{ .Values.log.level | quote }}
{{- end -}}

{{/* ordo.volumes are the pod volumes of gateways and workers: the workspace ConfigMap, and
a scratch /tmp since the root filesystem is read-only. ordo.volumeMounts mounts them. */}}
{{- define "ordo.volumes" -}}
- name: workspace
  configMap:
    name: {{ include "ordo.fullname" . }}-workspace
    items:
      - key: workspace.json
        path: workspace.json
- name: tmp
  emptyDir: {}
{{- end -}}
{{- define "ordo.volumeMounts" -}}
- name: workspace
  mountPath: {{ include "ordo.workspacePath" . | dir }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/* ordo.scheduling renders nodeSelector, tolerations and affinity from a component's values. */}}
{{- define "ordo.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
