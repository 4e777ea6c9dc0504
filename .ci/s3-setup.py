"""Prepares the loopback S3 servers `.ci/run` started (moto) and prints the
LEDGER_TEST_S3_* variables the tests read, one `NAME=value` per line.

Two servers: the main one, where the test bucket lives, and a strict one started with
INITIAL_NO_AUTH_ACTION_COUNT=0 so it checks every request's credentials; the tests use
it to see refused credentials reported as such. (moto's signature check rejects
correctly signed listings whose query holds a `/`, so the main server cannot also
check credentials.)
Usage: python3 .ci/s3-setup.py MAIN_ENDPOINT STRICT_ENDPOINT BUCKET
"""
import sys

import boto3

endpoint, strict, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
key_id, secret = "ledger-tests", "ledger-tests-secret"
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
)
s3.create_bucket(Bucket=bucket)
print(f"LEDGER_TEST_S3_ENDPOINT={endpoint}")
print(f"LEDGER_TEST_S3_STRICT_ENDPOINT={strict}")
print(f"LEDGER_TEST_S3_BUCKET={bucket}")
print(f"LEDGER_TEST_S3_ACCESS_KEY_ID={key_id}")
print(f"LEDGER_TEST_S3_SECRET_ACCESS_KEY={secret}")
