"""The control table: projects, catalogs and, in later features, trackers, notifications, keys
and watermarks, in one single-table design keyed by (`pk`, `sk`). Never scanned."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from chalicelib.dynamo import from_item, to_attr, to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]


class ControlTable(Protocol):
    def get(self, pk: str, sk: str) -> Item | None: ...

    def put(self, item: Item) -> None: ...

    def put_many(self, items: list[Item]) -> None: ...

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]: ...

    def delete(self, pk: str, sk: str) -> None: ...

    def put_checked(self, item: Item, expected_version: int | None) -> bool:
        """Optimistic concurrency: write `item` only when the stored item's `version` equals
        `expected_version` (None: only when no item exists). False when another writer won."""
        ...


class DynamoControlTable:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def get(self, pk: str, sk: str) -> Item | None:
        got = self._client.get_item(
            TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
        )
        return from_item(got["Item"]) if "Item" in got else None

    def put(self, item: Item) -> None:
        self._client.put_item(TableName=self._table, Item=to_item(item))

    def put_many(self, items: list[Item]) -> None:
        for start in range(0, len(items), 25):
            requests: list[Any] = [
                {"PutRequest": {"Item": to_item(i)}} for i in items[start : start + 25]
            ]
            pending: dict[str, Any] = {self._table: requests}
            for _ in range(8):
                out = self._client.batch_write_item(RequestItems=pending)
                pending = dict(out.get("UnprocessedItems") or {})
                if not pending:
                    break
            else:
                raise RuntimeError("control table writes stayed unprocessed")

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": to_attr(pk)}
        if sk_prefix:
            condition += " AND begins_with(sk, :sk)"
            values[":sk"] = to_attr(sk_prefix)
        items: list[Item] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": values,
        }
        while True:
            page = self._client.query(**kwargs)
            items.extend(from_item(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, pk: str, sk: str) -> None:
        self._client.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}})

    def put_checked(self, item: Item, expected_version: int | None) -> bool:
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": to_item(item)}
        if expected_version is None:
            kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            kwargs["ConditionExpression"] = "version = :v"
            kwargs["ExpressionAttributeValues"] = {":v": to_attr(expected_version)}
        try:
            self._client.put_item(**kwargs)
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True


class MemoryControlTable:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Item] = {}

    def get(self, pk: str, sk: str) -> Item | None:
        item = self.items.get((pk, sk))
        return dict(item) if item else None

    def put(self, item: Item) -> None:
        self.items[(item["pk"], item["sk"])] = dict(item)

    def put_many(self, items: list[Item]) -> None:
        for item in items:
            self.put(item)

    def query(self, pk: str, sk_prefix: str = "") -> list[Item]:
        return [
            dict(v)
            for (p, s), v in sorted(self.items.items())
            if p == pk and s.startswith(sk_prefix)
        ]

    def delete(self, pk: str, sk: str) -> None:
        self.items.pop((pk, sk), None)

    def put_checked(self, item: Item, expected_version: int | None) -> bool:
        current = self.items.get((item["pk"], item["sk"]))
        if expected_version is None:
            allowed = current is None
        else:
            allowed = current is not None and current.get("version") == expected_version
        if allowed:
            self.put(item)
        return allowed
