"""The HTTP edge: one client factory, one transport-error mapping, one status-to-error mapping.

`factory` builds every httpx client, `transport.Exchange` translates transport
exceptions, `outcomes.error_from_response` maps HTTP statuses to error classes,
`retry` decides what is retried, `auth` puts the key on the wire, `streaming`
reads event streams and `client.MeshClient` ties them to the API's operations.
"""
