"""StyleFusion live server: aiohttp app, WebRTC signalling, batched inference, admin jobs."""
