//! Generates the gRPC code from `ssl/v1/*.proto` with `protox`, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["ssl/v1/spec.proto", "ssl/v1/jobs.proto", "ssl/v1/workers.proto"];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(protos, ["."])?;

    // The spec messages double as the YAML/JSON job file format, so they get serde
    // derives that reject unknown fields and treat every field as optional.
    let spec_messages = [
        "JobSpec",
        "DatasetSpec",
        "ContrastiveMethod",
        "MaskedMethod",
        "ModelSpec",
        "TrainingSpec",
        "OptimizerSpec",
        "ScheduleSpec",
        "WorkerRange",
        "CheckpointPolicy",
        "EvaluationSpec",
    ];
    let mut config = tonic_prost_build::configure().btree_map(".");
    for message in spec_messages {
        config = config.message_attribute(
            format!(".ssl.v1.{message}"),
            "#[derive(serde::Serialize, serde::Deserialize)] \
             #[serde(deny_unknown_fields, default)]",
        );
    }
    // `JobSpec.method` gets hand-written serde impls in `spec/method_serde.rs`.
    config.compile_fds(descriptors)?;
    Ok(())
}
