//! Host-side bindings generated from `wit/sundial.wit`.

#![allow(missing_docs)]

/// The `action` world (and the shared `types` and `host` interfaces).
pub mod action {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sundial:plugin/action",
        imports: {
            // Backed by the store: they await its group-commit writer.
            "sundial:plugin/host.kv-get": async,
            "sundial:plugin/host.kv-set": async,
            "sundial:plugin/host.kv-delete": async,
            "sundial:plugin/host.secret": async,
            // Talks to the SMTP relay.
            "sundial:plugin/mail.send": async,
        },
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
        },
    });
}

/// The `formatter` world, reusing the action world's interfaces.
pub mod formatter {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "sundial:plugin/formatter",
        exports: { default: async },
        require_store_data_send: true,
        with: {
            "sundial:plugin/types": super::action::sundial::plugin::types,
            "sundial:plugin/host": super::action::sundial::plugin::host,
        },
    });
}
