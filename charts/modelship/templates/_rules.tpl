{{/* The operator's permissions, as a ClusterRole (all namespaces) or a Role in each watched namespace. */}}
{{- define "modelship.rules" }}
  - apiGroups: ["modelship.dev"]
    resources: ["modelservings"]
    # patch: only metadata.finalizers (the inference-topic finalizer), by server-side apply; never spec.
    verbs: ["get", "list", "watch", "patch"]
  - apiGroups: ["modelship.dev"]
    resources: ["modelservings/status"]
    verbs: ["get", "patch", "update"]
  # Owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on.
  - apiGroups: ["modelship.dev"]
    resources: ["modelservings/finalizers"]
    verbs: ["update"]
  # BatchPredictions: read, and their status written by server-side apply; never their spec (a run is immutable).
  - apiGroups: ["modelship.dev"]
    resources: ["batchpredictions"]
    verbs: ["get", "list", "watch"]
  - apiGroups: ["modelship.dev"]
    resources: ["batchpredictions/status"]
    verbs: ["get", "patch"]
  - apiGroups: ["modelship.dev"]
    resources: ["batchpredictions/finalizers"]
    verbs: ["update"]
  # A BatchPrediction's plan and shard Jobs: each made once by server-side apply (a patch that creates, so create
  # too), never updated (a Job's pod template cannot change) nor deleted (the garbage collector removes them with
  # their BatchPrediction).
  - apiGroups: ["batch"]
    resources: ["jobs"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
  - apiGroups: [""]
    resources: ["services"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
  - apiGroups: ["autoscaling"]
    resources: ["horizontalpodautoscalers"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
  - apiGroups: ["policy"]
    resources: ["poddisruptionbudgets"]
    verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["get", "list", "watch"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
  {{- if .Values.auth.kubernetes }}
  # spec.auth mode kubernetes: the namespace's modelship-auth ServiceAccount, made where missing (never deleted), by
  # server-side apply: a patch of that name only, which creates it (create cannot be limited by name).
  - apiGroups: [""]
    resources: ["serviceaccounts"]
    resourceNames: ["modelship-auth"]
    verbs: ["get", "patch"]
  - apiGroups: [""]
    resources: ["serviceaccounts"]
    verbs: ["create"]
  {{- end }}
  {{- if and .Values.python.envCache.claimName .Values.python.envCache.storageClassName }}
  # The shared Python environment cache's claim, made in a model namespace that has none (never deleted).
  - apiGroups: [""]
    resources: ["persistentvolumeclaims"]
    verbs: ["get", "create", "patch"]
  {{- end }}
{{- end }}
