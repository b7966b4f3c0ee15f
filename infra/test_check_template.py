"""Mutation tests of infra/check_template.py: each mutation of the template or the code is one
the check once let through; the check must fail on it, naming the problem. The repository as it
is must pass, so every failure here is the mutation's.

Run: .venv-infra/bin/python infra/test_check_template.py (part of `make check-template`).
"""
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECK = ROOT / "infra/check_template.py"
COPIED = ["infra/template.yaml", "infra/local/stack.json", "functions", "shared/src"]


def checked(mutate, extra=()):
    """Runs the check on a copy of the repository changed by `mutate(root)`: (passed, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        for part in COPIED:
            source, target = ROOT / part, root / part
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("target"))
            else:
                shutil.copy(source, target)
        mutate(root)
        command = [sys.executable, str(CHECK), "--root", str(root), *[a.replace("{root}", tmp) for a in extra]]
        run = subprocess.run(command, capture_output=True, text=True)
        return run.returncode == 0, run.stdout + run.stderr


def replace(path, old, new, count=1):
    def mutate(root):
        file = root / path
        text = file.read_text()
        assert old in text, f"{path}: the mutation's anchor {old!r} is gone; update the test"
        file.write_text(text.replace(old, new, count))
    return mutate


TEMPLATE = "infra/template.yaml"
INTAKE_POLICIES = "      Policies:\n        - Statement:\n            - Sid: StateStore\n              Effect: Allow\n              # PutItem"


class MutationsFailTheCheck(unittest.TestCase):
    def fails(self, mutate, *expected):
        passed, output = checked(mutate)
        self.assertFalse(passed, f"the check let the mutation through:\n{output}")
        for text in expected:
            self.assertIn(text, output)

    def test_the_repository_as_it_is_passes(self):
        passed, output = checked(lambda root: None)
        self.assertTrue(passed, output)

    def test_an_aws_managed_policy(self):
        self.fails(replace(TEMPLATE, INTAKE_POLICIES, INTAKE_POLICIES.replace(
            "      Policies:\n", "      Policies:\n        - arn:aws:iam::aws:policy/AmazonWorkSpacesAdmin\n")),
            "IntakeFunction: Policies holds arn:aws:iam::aws:policy/AmazonWorkSpacesAdmin")

    def test_a_sam_policy_template(self):
        self.fails(replace(TEMPLATE, INTAKE_POLICIES, INTAKE_POLICIES.replace(
            "      Policies:\n", "      Policies:\n        - DynamoDBCrudPolicy:\n            TableName: !Ref Table\n")),
            "IntakeFunction: Policies holds DynamoDBCrudPolicy")

    def test_a_role_of_its_own(self):
        self.fails(replace(TEMPLATE, "      CodeUri: ../functions/intake\n",
                           "      CodeUri: ../functions/intake\n      Role: arn:aws:iam::111122223333:role/admin\n"),
                   "IntakeFunction: sets Role")

    def test_a_resource_widened_to_any(self):
        self.fails(replace(TEMPLATE, "              Action: [workspaces:TerminateWorkspaces, workspaces:ModifyWorkspaceState]\n"
                                     "              Resource: !Sub",
                           "              Action: [workspaces:TerminateWorkspaces, workspaces:ModifyWorkspaceState]\n"
                           "              Resource: \"*\"\n              Metadata: !Sub"),
                   'TerminatorFunction: grants workspaces:TerminateWorkspaces on Resource "*"')

    def test_a_not_action_statement(self):
        self.fails(replace(TEMPLATE, "            - Sid: OrphanTerminationAndHandBacks\n",
                           "            - Sid: Everything\n              Effect: Allow\n              NotAction: [iam:*]\n"
                           "              Resource: \"*\"\n            - Sid: OrphanTerminationAndHandBacks\n"),
                   "ProvisionerFunction: a statement uses NotAction")

    def test_a_wildcard_action(self):
        self.fails(replace(TEMPLATE, "Action: [workspaces:DescribeWorkspaces, workspaces:DescribeTags]",
                           "Action: [workspaces:Describe*]"),
                   "grants the wildcard action workspaces:Describe*")

    def test_a_grant_under_the_wrong_backend_condition(self):
        self.fails(replace(TEMPLATE, "            - !If\n              - UsesDsData\n              - Sid: DirectoryUsers",
                           "            - !If\n              - UsesWorkDocs\n              - Sid: DirectoryUsers"),
                   "IntakeFunction: calls ds-data:CreateUser but is not granted it (DirectoryBackend=ds-data",
                   "IntakeFunction: is granted ds-data:CreateUser but never calls it (DirectoryBackend=workdocs")

    def test_disable_user_granted_when_leavers_users_are_kept(self):
        self.fails(replace(TEMPLATE, "Action: [ds-data:CreateUser, ds-data:DescribeUser, ds:AccessDSData",
                           "Action: [ds-data:CreateUser, ds-data:DescribeUser, ds-data:DisableUser, ds:AccessDSData"),
                   "IntakeFunction: is granted ds-data:DisableUser but never calls it "
                   "(DirectoryBackend=ds-data, OnLeaveDirectoryUser=keep")

    def test_kms_granted_without_a_volume_key(self):
        self.fails(replace(TEMPLATE, "            - !If\n              - EncryptsVolumes\n              - Sid: EncryptVolumes",
                           "            - !If\n              - UsesDsData\n              - Sid: EncryptVolumes"),
                   "ProvisionerFunction: is granted kms:CreateGrant but never calls it (DirectoryBackend=ds-data, "
                   "OnLeaveDirectoryUser=keep, no volume key)")

    def test_a_dashboard_or_an_alarm_on_a_metric_the_code_never_emits(self):
        self.fails(replace(TEMPLATE, '[["HrWorkspaces", "DriftMissing"]', '[["HrWorkspaces", "DriftMising"]'),
                   "Dashboard: shows HrWorkspaces/DriftMising, which the code never emits")
        self.fails(replace(TEMPLATE, "MetricName: StuckPending\n", "MetricName: StuckPendin\n"),
                   "StuckPendingAlarm: alarms on HrWorkspaces/StuckPendin, which the code never emits")

    def test_an_iam_resource_beside_the_functions(self):
        self.fails(replace(TEMPLATE, "Resources:\n", "Resources:\n  Extra:\n    Type: AWS::IAM::Policy\n"
                           "    Properties:\n      PolicyName: extra\n      Roles: [x]\n      PolicyDocument: {}\n"),
                   "Extra: an AWS::IAM::Policy grants outside the functions' Policies")

    def test_an_sdk_call_from_an_adapter_helper(self):
        def mutate(root):
            # Before the adapter's tests (the check reads the code above the first #[cfg(test)]).
            adapter = root / "shared/src/adapters/dynamo.rs"
            text = adapter.read_text()
            at = text.find("#[cfg(test)]") if "#[cfg(test)]" in text else len(text)
            adapter.write_text(text[:at] + "\nasync fn sneaky(client: &aws_sdk_dynamodb::Client) {\n"
                               "    let _ = client.scan().table_name(\"t\").send().await;\n}\n\n" + text[at:])
        self.fails(mutate,
                   "shared/src/adapters/dynamo.rs: sneaky sends an AWS request the check cannot attribute")

    def test_an_sdk_call_from_main(self):
        self.fails(replace("functions/reconciler/src/main.rs", "async fn main()",
                           "async fn probe(c: &aws_sdk_workspaces::Client) {\n"
                           "    let _ = c.describe_workspaces().send().await;\n}\n\nasync fn main()"),
                   "functions/reconciler/src/main.rs: makes an AWS call")

    # ------------------------------------------------------------ lifecycle events

    def test_put_events_not_granted(self):
        self.fails(replace(TEMPLATE, "            - Sid: LifecycleEvents\n              Effect: Allow\n"
                                     "              Action: [events:PutEvents]",
                           "            - Sid: LifecycleEvents\n              Effect: Allow\n"
                           "              Action: [events:DescribeEventBus]"),
                   "PublisherFunction: calls events:PutEvents but is not granted it",
                   "PublisherFunction: is granted events:DescribeEventBus but never calls it")
        self.fails(replace(TEMPLATE, "            - Sid: DriftFoundEvents\n              Effect: Allow\n"
                                     "              Action: [events:PutEvents]",
                           "            - Sid: DriftFoundEvents\n              Effect: Allow\n"
                           "              Action: [events:PutRule]"),
                   "AuditorFunction: calls events:PutEvents but is not granted it")

    def test_table_name_set_on_a_function_that_never_reads_it(self):
        self.fails(replace(TEMPLATE, "          PUBLISHER_FAILURES_QUEUE_URL: !Ref PublisherFailuresQueue\n      Events:\n",
                           "          PUBLISHER_FAILURES_QUEUE_URL: !Ref PublisherFailuresQueue\n          TABLE_NAME: !Ref Table\n"
                           "      Events:\n"),
                   "PublisherFunction: the template sets TABLE_NAME but the code never reads it")

    def test_a_stream_filter_the_local_stack_does_not_apply(self):
        self.fails(replace(TEMPLATE, """{"pk":{"S":[{"prefix":"EMP#"}]},"sk":{"S":["STATE"]}}""",
                           """{"sk":{"S":["STATE"]}}"""),
                   "publisher: the stream's FilterCriteria is")

    def test_a_stream_mapping_that_differs_from_the_local_one(self):
        self.fails(replace(TEMPLATE, "            MaximumRecordAgeInSeconds: 86400\n", "            MaximumRecordAgeInSeconds: 3600\n"),
                   "publisher: the stream's MaximumRecordAgeInSeconds is 3600 in the template, 86400 locally")
        self.fails(replace(TEMPLATE, "            BisectBatchOnFunctionError: true\n", ""),
                   "publisher: the stream's BisectBatchOnFunctionError is False in the template, True locally")
        self.fails(replace(TEMPLATE, "                Type: SQS\n                Destination: !GetAtt PublisherFailuresQueue.Arn",
                           "                Type: SNS\n                Destination: !GetAtt PublisherFailuresQueue.Arn"),
                   "publisher: the stream's OnFailure.Type is SNS, not SQS")

    def test_a_stream_read_from_a_table_without_one(self):
        self.fails(replace(TEMPLATE, "      StreamSpecification:\n        StreamViewType: NEW_AND_OLD_IMAGES\n", ""),
                   "table: PublisherFunction reads its stream, but it has no StreamSpecification")
        self.fails(replace(TEMPLATE, "StreamViewType: NEW_AND_OLD_IMAGES", "StreamViewType: KEYS_ONLY"),
                   "table: stream view type KEYS_ONLY in the template, NEW_AND_OLD_IMAGES locally")

    def test_a_queue_retention_that_differs(self):
        self.fails(replace(TEMPLATE, "-lifecycle-events\"\n      VisibilityTimeout: 30\n      MessageRetentionPeriod: 345600",
                           "-lifecycle-events\"\n      VisibilityTimeout: 30\n      MessageRetentionPeriod: 86400"),
                   "queue lifecycle-events: MessageRetentionPeriod 86400 vs 345600")

    def test_a_rule_pattern_that_differs_from_the_local_one(self):
        self.fails(replace(TEMPLATE, "        source: [hr-workspaces]\n      State: ENABLED\n      Targets:\n        # No RoleArn",
                           "        source: [hr-workspaces]\n        detail-type: [Drift Found]\n      State: ENABLED\n"
                           "      Targets:\n        # No RoleArn"),
                   "local rule all-lifecycle-events: no rule in the template sends",
                   "is not in the local stack's event_bus.rules")

    def test_a_rule_matching_what_the_code_never_publishes(self):
        self.fails(replace(TEMPLATE, "detail-type: [WorkSpace Failed, Held by Guard", "detail-type: [Workspace Failed, Held by Guard"),
                   "FailuresAndHoldsRule: matches detail-type 'Workspace Failed', which the code never publishes")

    def test_a_rule_target_under_the_aws_managed_key(self):
        self.fails(replace(TEMPLATE, "    Properties:\n      KmsMasterKeyId: !Ref NotificationsKey",
                           "    Properties:\n      KmsMasterKeyId: alias/aws/sns"),
                   "LifecycleNotificationsTopic: encrypted with the AWS-managed key alias/aws/sns")

    def test_a_key_policy_without_eventbridge(self):
        self.fails(replace(TEMPLATE, "              Service: events.amazonaws.com\n            Action: [kms:GenerateDataKey, kms:Decrypt]",
                           "              Service: sns.amazonaws.com\n            Action: [kms:GenerateDataKey, kms:Decrypt]"),
                   "NotificationsKey: its key policy does not allow events.amazonaws.com kms:GenerateDataKey")

    def test_a_queue_policy_for_any_rule(self):
        self.fails(replace(TEMPLATE, "            Resource: !GetAtt LifecycleEventsQueue.Arn\n            Condition:\n"
                                     "              ArnEquals:\n                \"aws:SourceArn\": !GetAtt AllLifecycleEventsRule.Arn\n",
                           "            Resource: !GetAtt LifecycleEventsQueue.Arn\n"),
                   "AllLifecycleEventsRule: no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage on "
                   "LifecycleEventsQueue for this rule only (aws:SourceArn its ARN): one lets any rule")

    def test_a_queue_policy_for_a_rule_that_does_not_send_to_it(self):
        self.fails(replace(TEMPLATE, "                \"aws:SourceArn\": !GetAtt AllLifecycleEventsRule.Arn\n",
                           "                \"aws:SourceArn\": [!GetAtt AllLifecycleEventsRule.Arn, !GetAtt FailuresAndHoldsRule.Arn]\n"),
                   "LifecycleEventsQueuePolicy: lets FailuresAndHoldsRule sqs:SendMessage on LifecycleEventsQueue, "
                   "which only AllLifecycleEventsRule send to")

    # ------------------------------------------------------------ rules' dead-letter queues

    DLQ_CONFIG = "          DeadLetterConfig:\n            Arn: !GetAtt LifecycleRuleDeadLetterQueue.Arn\n"

    def test_a_rule_target_without_a_dead_letter_queue(self):
        self.fails(replace(TEMPLATE, self.DLQ_CONFIG, ""),
                   "AllLifecycleEventsRule: target LifecycleEventsQueue has no DeadLetterConfig",
                   # the dead-letter queue's policy still lets the rule that no longer uses it
                   "LifecycleRuleDeadLetterQueuePolicy: lets AllLifecycleEventsRule sqs:SendMessage")

    def test_a_queue_in_the_template_only_that_is_no_rules_dead_letter_queue(self):
        # GIVEN the dead-letter queue no rule names any more
        self.fails(replace(TEMPLATE, self.DLQ_CONFIG, "", count=2),
                   "queue lifecycle-rule-dlq: in the template, not in the local stack")

    def test_a_dead_letter_queue_policy_for_any_rule(self):
        self.fails(replace(TEMPLATE, "            Resource: !GetAtt LifecycleRuleDeadLetterQueue.Arn\n            Condition:\n",
                           "            Resource: !GetAtt LifecycleRuleDeadLetterQueue.Arn\n            Metadata:\n"),
                   "AllLifecycleEventsRule: no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage on "
                   "LifecycleRuleDeadLetterQueue for this rule only (aws:SourceArn its ARN): one lets any rule",
                   "FailuresAndHoldsRule: no AWS::SQS::QueuePolicy lets events.amazonaws.com sqs:SendMessage on "
                   "LifecycleRuleDeadLetterQueue")

    def test_a_dead_letter_queue_nobody_watches(self):
        self.fails(replace(TEMPLATE, "          Value: !GetAtt LifecycleRuleDeadLetterQueue.QueueName\n",
                           "          Value: !GetAtt LifecycleEventsQueue.QueueName\n"),
                   "LifecycleRuleDeadLetterQueue: no alarm on its ApproximateNumberOfMessagesVisible")

    # ------------------------------------------------------------ the audit's actions (off by default)

    AUDIT_SEND = ("            - !If\n              - AuditRequestsMissingAgain\n              - Sid: RequestMissingAgain\n")
    AUDIT_TERMINATE = ("            - !If\n              - AuditTerminatesManagedOrphans\n              - Sid: TerminateManagedOrphans\n"
                       "                Effect: Allow\n"
                       "                # Only with AuditOnOrphaned=terminate-managed: an orphan found by audits for a day,\n"
                       "                # managed-tagged, not protected, admitted by the guard.\n"
                       "                Action: [workspaces:TerminateWorkspaces]\n"
                       "                Resource: !Sub \"arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*\"\n"
                       "                # IAM too refuses a WorkSpace without the managed tag (one made by hand).\n"
                       "                Condition:\n"
                       "                  \"Null\":\n"
                       "                    \"aws:ResourceTag/hr-pipeline:managed\": \"false\"\n"
                       "              - !Ref AWS::NoValue\n")
    PROTECT_DENY = ("              Effect: Deny\n              Action: [workspaces:TerminateWorkspaces]\n"
                    "              Resource: !Sub \"arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*\"\n"
                    "              Condition:\n                \"Null\":\n"
                    "                  \"aws:ResourceTag/hr-pipeline:protect\": \"false\"\n")
    AUDIT_DENY = ("            - Sid: NeverAProtectedWorkspace\n"
                  "              # The backstop to the tag check the code makes before terminating: IAM refuses it too.\n"
                  "              # Under every setting (it grants nothing; without TerminateWorkspaces it is moot).\n"
                  + PROTECT_DENY + "\n  PublisherLogs:")
    TERMINATOR_DENY = ("            - Sid: NeverAProtectedWorkspace\n"
                       "              # The backstop to the tag check the code makes before terminating: IAM refuses it too.\n"
                       + PROTECT_DENY + "            - Sid: Describe\n")

    def test_the_audit_request_granted_when_it_only_reports_missing(self):
        # GIVEN the auditor granted sqs:SendMessage under every setting, not only AuditOnMissing=request-again
        passed, output = checked(replace(TEMPLATE, self.AUDIT_SEND,
                                         "            - Sid: AlwaysSend\n              Effect: Allow\n"
                                         "              Action: [sqs:SendMessage]\n"
                                         "              Resource: !GetAtt WorkspaceRequestsQueue.Arn\n" + self.AUDIT_SEND))
        # THEN it is named under the default (report), and only there
        self.assertFalse(passed, output)
        self.assertIn("AuditorFunction: is granted sqs:SendMessage but never calls it "
                      "(AuditOnMissing=report, AuditOnOrphaned=report)", output)
        self.assertNotIn("AuditOnMissing=request-again", output)
        # and the functions that always send are not touched by the auditor's rule
        self.assertNotIn("IntakeFunction", output)
        self.assertNotIn("TerminatorFunction", output)

    def test_the_audit_termination_not_granted_when_it_terminates_orphans(self):
        # GIVEN the auditor's conditional TerminateWorkspaces gone
        passed, output = checked(replace(TEMPLATE, self.AUDIT_TERMINATE, ""))
        # THEN it is named under AuditOnOrphaned=terminate-managed, not under report
        self.assertFalse(passed, output)
        self.assertIn("AuditorFunction: calls workspaces:TerminateWorkspaces but is not granted it "
                      "(AuditOnMissing=report, AuditOnOrphaned=terminate-managed)", output)
        self.assertNotIn("AuditOnOrphaned=report)", output)
        self.assertNotIn("TerminatorFunction", output)

    def test_the_audit_termination_granted_when_it_only_reports_orphans(self):
        # GIVEN the auditor granted TerminateWorkspaces under every setting (the terminator always is)
        passed, output = checked(replace(TEMPLATE, self.AUDIT_TERMINATE, self.AUDIT_TERMINATE.replace(
            "            - !If\n              - AuditTerminatesManagedOrphans\n              - Sid: TerminateManagedOrphans\n",
            "            - !If\n              - AuditRequestsMissingAgain\n              - Sid: TerminateManagedOrphans\n")))
        # THEN the per-function rule names it under the auditor's own setting
        self.assertFalse(passed, output)
        self.assertIn("AuditorFunction: is granted workspaces:TerminateWorkspaces but never calls it "
                      "(AuditOnMissing=request-again, AuditOnOrphaned=report)", output)
        self.assertIn("AuditorFunction: calls workspaces:TerminateWorkspaces but is not granted it "
                      "(AuditOnMissing=report, AuditOnOrphaned=terminate-managed)", output)
        self.assertNotIn("TerminatorFunction", output)

    def test_a_grant_under_the_mismatched_setting_is_tried_both_ways(self):
        # GIVEN a WorkSpaces grant the auditor never needs, made under AuditOnMismatched=reapply
        def mutate(root):
            replace(TEMPLATE, "  AuditTerminatesManagedOrphans:",
                    "  AuditReappliesMismatched: !Equals [!Ref AuditOnMismatched, reapply]\n"
                    "  AuditTerminatesManagedOrphans:")(root)
            replace(TEMPLATE, self.AUDIT_SEND,
                    "            - !If\n              - AuditReappliesMismatched\n              - Sid: Modify\n"
                    "                Effect: Allow\n                Action: [workspaces:ModifyWorkspaceProperties]\n"
                    "                Resource: !Sub \"arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*\"\n"
                    "              - !Ref AWS::NoValue\n" + self.AUDIT_SEND)(root)
        passed, output = checked(mutate)
        # THEN it is named under that setting
        self.assertFalse(passed, output)
        self.assertIn("AuditorFunction: is granted workspaces:ModifyWorkspaceProperties but never calls it "
                      "(AuditOnMissing=report, AuditOnMismatched=reapply, AuditOnOrphaned=report)", output)
        self.assertNotIn("AuditOnMismatched=report)", output)

    def test_a_function_that_may_terminate_without_the_protect_deny(self):
        # GIVEN the auditor's Deny of terminating a protected WorkSpace gone
        self.fails(replace(TEMPLATE, self.AUDIT_DENY, "\n  PublisherLogs:"),
                   "AuditorFunction: is granted workspaces:TerminateWorkspaces but has no Deny of it for a WorkSpace "
                   "tagged hr-pipeline:protect (Condition Null aws:ResourceTag/hr-pipeline:protect: \"false\"): IAM must "
                   "refuse to terminate a protected WorkSpace too (AuditOnMissing=report, AuditOnOrphaned=terminate-managed)")
        # GIVEN the terminator's gone
        self.fails(replace(TEMPLATE, self.TERMINATOR_DENY, "            - Sid: Describe\n"),
                   "TerminatorFunction: is granted workspaces:TerminateWorkspaces but has no Deny of it for a WorkSpace "
                   "tagged hr-pipeline:protect")
        # GIVEN the auditor's narrowed by another condition: it refuses less than every protected WorkSpace
        self.fails(replace(TEMPLATE, self.AUDIT_DENY, self.AUDIT_DENY.replace(
            "\n  PublisherLogs:", "                StringEquals:\n                  \"aws:ResourceTag/Team\": design\n\n  PublisherLogs:")),
                   "AuditorFunction: is granted workspaces:TerminateWorkspaces but has no Deny of it for a WorkSpace "
                   "tagged hr-pipeline:protect")
        # GIVEN the auditor's on another resource than the one it may terminate
        self.fails(replace(TEMPLATE, self.AUDIT_DENY, self.AUDIT_DENY.replace(":workspace/*", ":workspace/ws-none")),
                   "AuditorFunction: is granted workspaces:TerminateWorkspaces but has no Deny of it on "
                   "{\"Fn::Sub\": \"arn:${AWS::Partition}:workspaces:${AWS::Region}:${AWS::AccountId}:workspace/*\"} "
                   "for a WorkSpace tagged hr-pipeline:protect")

    # ------------------------------------------------------------ alarm actions

    def test_alarm_actions_to_a_topic_under_the_aws_managed_key(self):
        self.fails(replace(TEMPLATE, "anyone.\n      KmsMasterKeyId: !Ref NotificationsKey\n",
                           "anyone.\n      KmsMasterKeyId: alias/aws/sns\n"),
                   "AlarmTopic: encrypted with the AWS-managed key alias/aws/sns, whose policy cannot let CloudWatch use "
                   "it: the alarms acting on it (AuditorErrorsAlarm, ...) can never notify through it")

    def test_a_key_policy_without_cloudwatch(self):
        self.fails(replace(TEMPLATE, "              Service: cloudwatch.amazonaws.com\n",
                           "              Service: logs.amazonaws.com\n"),
                   "NotificationsKey: its key policy does not allow cloudwatch.amazonaws.com kms:GenerateDataKey: the "
                   "alarms acting on it (AuditorErrorsAlarm, ...) cannot notify through AlarmTopic")


class RecordedCallsCheck(unittest.TestCase):
    def test_calls_made_and_grants_must_agree_both_ways(self):
        # GIVEN a recorded run in which the intake scanned the table, queried the index, and made
        # none of its other calls, and no run of the other functions
        recording = {"functions": {"intake": {
            "environment": {"DIRECTORY_BACKEND": "ds-data", "ON_LEAVE_DIRECTORY_USER": "keep"},
            "calls": ["dynamodb:Scan", "dynamodb:Query index=work-index", "dynamodb:GetItem"]}}}

        def record(root):
            (root / "calls").mkdir()
            (root / "calls/run.json").write_text(json.dumps(recording))
        passed, output = checked(record, ["--calls", "{root}/calls"])
        # THEN each disagreement is named
        self.assertFalse(passed, output)
        for expected in [
            "IntakeFunction: called dynamodb:Scan in a recorded run but is not granted it",
            "IntakeFunction: called dynamodb:Query on index work-index but is granted it only on ['the table']",
            "IntakeFunction: is granted ds-data:CreateUser but no recorded run called it",
            "ProvisionerFunction: no recorded run of it",
        ]:
            self.assertIn(expected, output)
        self.assertNotIn("IntakeFunction: is granted dynamodb:GetItem", output)

    def test_an_eventbridge_call_is_checked_like_any_other(self):
        # GIVEN a run in which the publisher published and the auditor found no drift to publish
        recording = {"functions": {
            "publisher": {"environment": {"EVENT_BUS_NAME": "hr-workspaces-lifecycle"}, "calls": ["events:PutEvents"]},
            "auditor": {"environment": {"EVENT_BUS_NAME": "hr-workspaces-lifecycle"}, "calls": ["dynamodb:Scan"]}}}

        def record(root):
            (root / "calls").mkdir()
            (root / "calls/run.json").write_text(json.dumps(recording))
        passed, output = checked(record, ["--calls", "{root}/calls"])
        # THEN the publisher's call matches its grant, and the auditor's unused grant is named
        self.assertFalse(passed, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("AuditorFunction: is granted events:PutEvents but no recorded run called it", output)
        self.assertNotIn("PublisherFunction: called events:PutEvents", output)
        self.assertNotIn("PublisherFunction: is granted events:PutEvents", output)


if __name__ == "__main__":
    unittest.main(verbosity=2)
