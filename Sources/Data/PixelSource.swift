import Foundation
import TesseraEngine

/// An image read window by window: a decoded PNG or JPEG held in memory, or a TIFF whose slices are read from the
/// file as windows are asked for (tiles or strips decoded on demand), so a whole-slide image is never in memory.
///
/// Used by one thread at a time (opened on the prefetch thread, then handed to the run): the TIFF handle keeps
/// its current page, so the type is `@unchecked Sendable` on that discipline.
public final class PixelSource: @unchecked Sendable {
    public let file: String
    public let format: ImageFormat
    public let width: Int, height: Int
    /// Channels of every window (the file's; a model's channel conversion is the caller's).
    public let channels: Int
    /// Images in the file: TIFF slices (pages or OME z/t planes), 1 for PNG and JPEG.
    public let slices: Int
    /// Channel names from OME-TIFF metadata, or empty.
    public let channelNames: [String]
    private let storage: Storage

    private enum Storage {
        case image(Image)
        case tiff(TIFFFile, TIFFStack)
    }

    /// The longest side a streamed image may have: 2^24 pixels, 280 times the 60000-pixel slides of the benchmark,
    /// so no count of pixels, tiles or output bytes can overflow.
    public static let maxSide = 1 << 24

    /// A decoded image as a source of one slice.
    public init(_ image: Image, file: String, format: ImageFormat) {
        self.file = file
        self.format = format
        width = image.width
        height = image.height
        channels = image.channels
        slices = 1
        channelNames = []
        storage = .image(image)
    }

    /// Opens `url`: a TIFF is opened for windowed reading (its header and page layout checked now); PNG and JPEG
    /// are decoded whole through `decode`.
    public init(url: URL, tiffPages: TIFFPages = .auto, decode: (URL) throws -> Image) throws {
        file = url.path
        let head: Data
        do {
            let handle = try FileHandle(forReadingFrom: url)
            defer { try? handle.close() }
            head = try handle.read(upToCount: 8) ?? Data()
        } catch {
            throw FileError(file: url.path, reason: "cannot read: \((error as NSError).localizedDescription)")
        }
        if ImageFormat.sniff(head) == .tiff {
            let tiff = try TIFFFile(url: url)
            let stack = try TIFFStack(tiff, pages: tiffPages)
            guard stack.width <= PixelSource.maxSide, stack.height <= PixelSource.maxSide else {
                throw FileError(
                    file: url.path,
                    reason: "a \(stack.width)x\(stack.height) image is over \(PixelSource.maxSide) pixels a side")
            }
            format = .tiff
            width = stack.width
            height = stack.height
            channels = stack.channels
            slices = stack.slices.count
            channelNames = stack.channelNames
            storage = .tiff(tiff, stack)
        } else {
            let image = try decode(url)
            format = ImageFormat.sniff(head) ?? .png
            width = image.width
            height = image.height
            channels = image.channels
            slices = 1
            channelNames = []
            storage = .image(image)
        }
    }

    /// The whole image when it is held in memory (PNG, JPEG), nil for a TIFF read from its file.
    public var image: Image? {
        if case .image(let image) = storage { return image }
        return nil
    }

    /// The pixels of `window` (inside the image) of slice `slice`.
    public func window(_ window: PixelWindow, slice: Int = 0) throws -> Image {
        guard (0..<slices).contains(slice) else {
            throw FileError(file: file, reason: "slice \(slice + 1) is past the file's \(slices)")
        }
        switch storage {
        case .image(let image):
            guard window.x >= 0, window.y >= 0, window.width > 0, window.height > 0,
                window.x + window.width <= width, window.y + window.height <= height
            else { throw FileError(file: file, reason: "window \(window) is outside the \(width)x\(height) image") }
            return image.cropped(x: window.x, y: window.y, width: window.width, height: window.height)
        case .tiff(let tiff, let stack):
            return try stack.window(window, slice: slice, of: tiff)
        }
    }
}
