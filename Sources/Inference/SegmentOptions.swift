import Foundation
import TesseraData
import TesseraObjects
import TesseraSettings

/// Settings of a segmentation run. Each is declared once, with its range, in `SegmentOptions.table`.
public struct SegmentOptions: Sendable, BatchPolicy {
    /// What is written per input; always includes the label mask, which completeness and the report read back.
    public var outputs: Set<SegmentOutput> = [.mask] {
        didSet { outputs.insert(.mask) }
    }
    /// The sliding window: tile (nil: the checkpoint's training crop), overlap, blend, test-time augmentation.
    public var window = WindowOptions()
    /// Ground-truth masks (same relative paths) for per-image and overall metrics.
    public var masks: URL?
    public var shard: Shard?
    public var overwrite = false
    public var strict = false
    /// `png` or `jpg`.
    public var overlayFormat = OverlayFormat.png
    public var recursive = false
    /// Outputs made by another model or other settings are recomputed instead of stopping the run.
    public var recomputeStale = false
    /// nil: TIFF outputs for TIFF inputs, PNG for the rest.
    public var outputFormat: OutputFileFormat?
    /// How the pages of a multi-page TIFF become images (each slice is segmented; outputs get a page per slice).
    public var tiffPages = TIFFPages.auto
    /// The edge of the chunks an image is segmented in (`TiledInference.run`), a multiple of the 256-pixel TIFF
    /// output tile: memory follows it, whatever the image's size, and a killed run resumes from the last chunk
    /// row. 2048: the tile rows shared between chunk rows, run twice, cost about 1/16 more network time (tiles of
    /// 256 at 50% overlap); the chunk's accumulators take 16 MiB per class.
    public var chunk = 2048
    /// Objects of each mask (`OUT/instances/`, `OUT/objects/`, object counts and scores in the reports) and what
    /// the truth masks hold.
    public var objects = ObjectOptions()

    public init() {}

    /// The defaults, which the command line's options start from too.
    public static let defaults = SegmentOptions()

    public var tile: Int? {
        get { window.tile }
        set { window.tile = newValue }
    }
    public var overlap: Double {
        get { window.overlap }
        set { window.overlap = newValue }
    }
    public var blend: TiledInference.Blend {
        get { window.blend }
        set { window.blend = newValue }
    }
    public var tta: Bool {
        get { window.tta }
        set { window.tta = newValue }
    }
    /// nil: pixels only.
    public var instances: InstanceSettings? {
        get { objects.settings }
        set { objects.settings = newValue }
    }
    public var truth: TruthKind {
        get { objects.truth }
        set { objects.truth = newValue }
    }

    /// Every option of `tessera segment` and the pipeline's `segment` section.
    public static var table: OptionTable<SegmentOptions> {
        OptionTable(
            stage: "segment",
            [
                .flag("recursive", \.recursive, help: "Descend into sub-folders."),
                .choices(
                    "outputs", \.outputs, help: "Outputs, comma-separated (the mask is always written).")
            ] + WindowOptions.options.map { $0.lifted(\SegmentOptions.window) } + [
                .path(
                    "masks", \.masks,
                    help: "Ground-truth masks with the same relative paths: adds metrics to the report."),
                Shard.option(\.shard),
                .flag("overwrite", \.overwrite, help: "Recompute outputs that already exist.").commandLineOnly,
                .flag("strict", \.strict, help: "Stop at the first image that cannot be segmented.").commandLineOnly,
                .choice(
                    "overlay_format", \.overlayFormat,
                    help: "Overlay file format (PNG outputs; TIFF outputs have TIFF overlays)."),
                .choice(
                    "output_format", \.outputFormat,
                    help: "Output file format (default: tiff for TIFF inputs, png for the others)."),
                .choice("tiff_pages", \.tiffPages, help: "How the pages of a multi-page TIFF become images."),
                .integer(
                    "chunk", \.chunk, 256...16384, step: 256,
                    help: "Chunk edge in pixels: memory follows it, whatever the image size.")
            ] + ObjectOptions.options.map { $0.lifted(\SegmentOptions.objects) })
    }

    /// Refuses the first value out of its range (`tile must be 1-65536, is 0`) and settings that do not go
    /// together.
    public func validate() throws {
        try Self.table.validate(self)
        try objects.validate()
    }
}

/// The sliding window `segment`, `eval` and `explain` share: tile edge, overlap, blending, test-time augmentation.
public struct WindowOptions: Sendable, Equatable {
    /// Input tile edge; nil: the checkpoint's training crop.
    public var tile: Int?
    public var overlap = 0.5
    public var blend = TiledInference.Blend.gaussian
    public var tta = false

    public init() {}

    /// The inference these settings ask for, with `crop` as the tile when none is set.
    public func inference(crop: Int) -> TiledInference {
        TiledInference(tile: tile ?? crop, overlap: overlap, blend: blend, tta: tta)
    }

    public static var options: [OptionSpec<WindowOptions>] {
        [
            .integer("tile", \.tile, 1...65536, help: "Tile edge in pixels (default: the training crop)."),
            .number("overlap", \.overlap, .openAbove(0, 1), help: "Overlap of neighbouring tiles."),
            .choice("blend", \.blend, help: "Tile blending."),
            .flag(
                "tta", \.tta,
                help:
                    "Test-time augmentation: average over the flips and rotations by 90 degrees (8 for square tiles; 4 for others, where a rotation would change the tile's shape)."
            )
        ]
    }
}

/// `--instances` and its rules (`segment`, `eval`), and what truth masks hold.
public struct ObjectOptions: Sendable, Equatable {
    /// nil: pixels only.
    public var method: InstanceMethod?
    /// The rules (their `method` is `method`'s when set).
    public var rules = InstanceSettings()
    public var truth = TruthKind.classes

    public init() {}

    /// The instance settings asked for (nil: none); setting them sets the method and the rules.
    public var settings: InstanceSettings? {
        get {
            method.map {
                var s = rules
                s.method = $0
                return s
            }
        }
        set {
            method = newValue?.method
            rules = newValue ?? InstanceSettings()
        }
    }

    /// Keys that apply to objects only.
    static let ruleKeys = ["connectivity", "seeds", "seed_depth", "min_size", "max_hole", "exclude_border"]

    public static var options: [OptionSpec<ObjectOptions>] {
        let limit = Int(UInt32.max)
        let rules: [OptionSpec<InstanceSettings>] = [
            .choice(
                "connectivity", \.connectivity,
                help: "Pixels that touch by an edge (4) or also by a corner (8) are one object."),
            .choice(
                "seeds", \.seeds,
                help: "Watershed seeds: peaks of the distance to the edge or of the class probability."
            ),
            .number(
                "seed_depth", \.seedDepth, .openBelow(0, 1e6),
                help:
                    "How far a peak must rise above the pass to a higher one to seed its own object (pixels for distance, probability for probability and membrane seeds; default 2 or 0.1)."
            ),
            .integer(
                "min_size", \.minSize, 0...limit,
                help: "Drop objects of fewer pixels (membrane: of fewer cell pixels; theirs join a neighbouring cell)."),
            .integer(
                "max_hole", \.maxHole, 0...limit, help: "Fill holes of at most this many pixels inside objects first."),
            .flag("exclude_border", \.excludeBorder, help: "Drop objects that touch the image border.")
        ]
        return [
            .choice(
                "instances", \.method,
                help:
                    "Objects of each mask: connected components of each class, a watershed for touching ones, or cells flooded over a membrane map (class 0 the membrane: EM)."
            )
        ] + rules.map { $0.lifted(\ObjectOptions.rules).requiring("instances") } + [
            .choice(
                "truth", \.truth,
                help: "What the truth masks hold: class ids (made into objects as predictions are) or object ids.")
        ]
    }

    /// Settings that do not go together.
    public func validate() throws {
        if truth == .objects && method == nil {
            throw OptionError(option: "truth", reason: "objects scores objects: ask for instances too")
        }
    }
}

extension Shard {
    /// `--shard i/n`.
    public static func option<Options>(_ path: WritableKeyPath<Options, Shard?>) -> OptionSpec<Options> {
        OptionSpec(
            "shard", kind: .text, help: "Process shard i of n of the sorted inputs (e.g. 0/4).",
            read: {
                guard let shard = Shard($1) else { throw OptionProblem("takes i/n with 0 <= i < n, not '\($1)'") }
                $0[keyPath: path] = shard
            }, show: { $0[keyPath: path].map { "\($0.index)/\($0.count)" } }
        ).commandLineOnly
    }
}
